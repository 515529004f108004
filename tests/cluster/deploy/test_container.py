"""The container assets (cluster/deploy/Dockerfile, compose.yaml) agree with the repository they build from.

No image is built here (the build takes minutes and the network; docs/guides/deploying.md says what was built
by hand): these tests parse the files and check what a build or a `compose up` relies on.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "cluster" / "deploy"


@dataclass
class Stage:
    """One build stage: its base, its name and its instructions (keyword, arguments)."""

    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        """The arguments of every instruction with this keyword."""
        return [args for kw, args in self.instructions if kw == keyword]


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """The global ARGs and the stages of a Dockerfile (line continuations joined, comments dropped)."""
    logical: list[str] = []
    buffer = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not buffer and (not line or line.startswith("#")):
            continue
        if buffer and line.startswith("#"):
            continue
        buffer += (" " if buffer else "") + line.removesuffix("\\").strip()
        if not line.endswith("\\"):
            logical.append(buffer)
            buffer = ""
    assert not buffer, "the Dockerfile ends inside a continued line"
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = rest.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else ""
            stages.append(Stage(base=words[0], name=name))
        elif not stages:
            assert keyword == "ARG", f"only ARG may come before the first FROM, found {keyword}"
            key, _, value = rest.partition("=")
            args[key] = value
        else:
            stages[-1].instructions.append((keyword, rest))
    return args, stages


@pytest.fixture(scope="module")
def dockerfile() -> tuple[dict[str, str], list[Stage]]:
    return parse_dockerfile((DEPLOY / "Dockerfile").read_text(encoding="utf-8"))


def _copies(stage: Stage) -> list[tuple[str | None, list[str], str]]:
    """Each COPY as (--from stage or None, sources, destination)."""
    out = []
    for args in stage.all("COPY"):
        words = shlex.split(args)
        source_stage = None
        while words[0].startswith("--"):
            flag = words.pop(0)
            if flag.startswith("--from="):
                source_stage = flag.removeprefix("--from=")
        out.append((source_stage, words[:-1], words[-1]))
    return out


def test_three_stages_ui_wheel_runtime_on_parameterised_bases(
    dockerfile: tuple[dict[str, str], list[Stage]],
) -> None:
    args, stages = dockerfile
    assert [s.name for s in stages] == ["ui", "wheel", "runtime"]
    assert [s.base for s in stages] == ["${NODE_IMAGE}", "${PYTHON_IMAGE}", "${PYTHON_IMAGE}"]
    assert set(args) == {"NODE_IMAGE", "PYTHON_IMAGE"}
    python_minor = re.search(r"python:(\d+\.\d+)", args["PYTHON_IMAGE"])
    assert python_minor, args["PYTHON_IMAGE"]
    required = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "requires-python"
    ]
    assert required == ">=3.11" and tuple(map(int, python_minor.group(1).split("."))) >= (3, 11)


def test_every_copied_path_exists_and_is_not_ignored(dockerfile: tuple[dict[str, str], list[Stage]]) -> None:
    _, stages = dockerfile
    ignored = [
        line.strip()
        for line in (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    seen: list[str] = []
    for stage in stages:
        for source_stage, sources, _dest in _copies(stage):
            if source_stage is not None:
                assert source_stage in seen, f"COPY --from={source_stage} in {stage.name}: no earlier stage"
                continue
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source} (stage {stage.name}): not in the repository"
                hits = [p for p in ignored if fnmatch.fnmatch(source, p.removeprefix("**/"))]
                assert not hits, f"COPY {source}: excluded from the build context by {hits}"
        seen.append(stage.name)


def test_ui_stage_builds_the_bundle_the_package_ships(dockerfile: tuple[dict[str, str], list[Stage]]) -> None:
    _, (ui, wheel, runtime) = dockerfile
    runs = " ".join(ui.all("RUN"))
    assert "npm ci" in runs and "npm run --silent build" in runs  # as `make ui` does
    package = json.loads((ROOT / "serve/ui/web/package.json").read_text(encoding="utf-8"))
    assert package["scripts"]["build"].endswith("vite build")
    assert "../dist" in (ROOT / "serve/ui/web/vite.config.ts").read_text(encoding="utf-8")
    assert ("ui", ["/src/serve/ui/dist"], "./serve/ui/dist") in _copies(wheel)
    assert any("-m build --wheel" in r for r in wheel.all("RUN"))
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    assert "dist/*" in package_data["package-data"]["serve.ui"]
    install = " ".join(runtime.all("RUN"))
    assert "--no-index --find-links /tmp/wheels rayweave" in install
    assert "'dist' / 'index.html'" in install  # the image refuses to build without the bundle inside


def test_runtime_runs_as_a_user_not_root(dockerfile: tuple[dict[str, str], list[Stage]]) -> None:
    _, stages = dockerfile
    runtime = stages[-1]
    users = runtime.all("USER")
    assert users, "the runtime stage sets no USER: the container would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("0", "root")
    created = " ".join(runtime.all("RUN"))
    assert f"--uid {user}" in created
    last_user = max(i for i, (kw, _) in enumerate(runtime.instructions) if kw == "USER")
    later = [kw for kw, _ in runtime.instructions[last_user:]]
    assert "RUN" not in later, "a RUN after USER would build as the unprivileged user: keep USER last"


def test_healthcheck_asks_the_api_liveness_route(dockerfile: tuple[dict[str, str], list[Stage]]) -> None:
    _, stages = dockerfile
    runtime = stages[-1]
    (check,) = runtime.all("HEALTHCHECK")
    route = re.search(r"http://127\.0\.0\.1:%s(/v1/\w+)", check)
    assert route, check
    paths = json.loads((ROOT / "docs/reference/openapi-v1.json").read_text(encoding="utf-8"))["paths"]
    assert route.group(1) == "/v1/health" and "get" in paths["/v1/health"]
    assert "security" not in paths["/v1/health"]["get"] or paths["/v1/health"]["get"]["security"] == []
    env = " ".join(runtime.all("ENV"))
    assert "RAYWEAVE_HOST=0.0.0.0" in env and "RAYWEAVE_PORT=8000" in env


def test_entry_point_is_rayweave_serve(dockerfile: tuple[dict[str, str], list[Stage]]) -> None:
    _, stages = dockerfile
    runtime = stages[-1]
    assert json.loads(runtime.all("ENTRYPOINT")[-1]) == ["rayweave"]
    assert json.loads(runtime.all("CMD")[-1]) == ["serve"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert scripts["rayweave"] == "serve.cli:main"
    assert "8000" in runtime.all("EXPOSE")[-1].split()


@pytest.fixture(scope="module")
def compose() -> dict[str, object]:
    data = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_compose_has_head_worker_database_and_broker(compose: dict[str, object]) -> None:
    services = compose["services"]
    assert isinstance(services, dict)
    assert set(services) == {"head", "worker", "postgres", "nats"}
    head, worker = services["head"], services["worker"]
    build = head["build"]
    assert (DEPLOY / build["context"]).resolve() == ROOT
    assert (ROOT / build["dockerfile"]).is_file()
    assert head["image"] == worker["image"]
    script = head["command"][0]
    assert "ray start --head --port=6379" in script and "rayweave serve --address head:6379" in script
    assert head["ports"] == ["127.0.0.1:8000:8000"]  # the API on loopback only
    assert worker["command"][:2] == ["start", "--address=head:6379"] and "--block" in worker["command"]
    assert worker["depends_on"]["head"]["condition"] == "service_healthy"
    assert head["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "--jetstream" in services["nats"]["command"]


def test_compose_ray_token_and_database_are_required(compose: dict[str, object]) -> None:
    env = compose["x-rayweave"]["environment"]  # type: ignore[index]
    assert env["RAY_AUTH_MODE"] == "token"
    assert env["RAY_AUTH_TOKEN"].startswith("${RAY_AUTH_TOKEN:?")  # compose refuses to start without it
    url = env["RAYWEAVE_DATABASE_URL"]
    assert url.startswith("postgresql+psycopg://rayweave:${POSTGRES_PASSWORD:?") and "@postgres:5432/" in url
    assert env["RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH"] == "serve.middleware.proxy_middlewares"
    from serve.middleware import PROXY_CALLBACK

    assert env["RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH"] == PROXY_CALLBACK


def test_compose_runs_the_same_number_of_coordinators_on_head_and_worker(compose: dict[str, object]) -> None:
    # Every process of an installation must use the same number (docs/adr/025-several-coordinators.md).
    services = compose["services"]
    chosen = {services[name]["environment"]["RAYWEAVE_COORDINATORS"] for name in ("head", "worker")}  # type: ignore[index]
    assert chosen == {"${RAYWEAVE_COORDINATORS:-1}"}
