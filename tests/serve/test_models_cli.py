"""`rayweave models` without `--server` and without a running Ray: answered without starting one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import json, sys
from typer.testing import CliRunner
from serve.cli import build_app
result = CliRunner().invoke(build_app(), sys.argv[1:])
ray = sys.modules.get("ray")
print(json.dumps({"code": result.exit_code, "output": result.output,
                  "ray_started": bool(ray is not None and ray.is_initialized())}))
"""


def test_models_list_without_a_running_ray_says_so_without_starting_one(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAYWEAVE_", "RAY_ADDRESS"))}
    env["RAYWEAVE_HOME"] = str(tmp_path / "home")  # no `rayweave ray start` record there
    for args in (["models", "list"], ["models", "show", "iris"]):
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT, *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        answer = json.loads(done.stdout.strip().splitlines()[-1])
        assert answer["code"] == 2 and "no running Ray" in answer["output"], answer
        assert "rayweave ray start" in answer["output"] and not answer["ray_started"]
