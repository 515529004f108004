"""Ray options have two homes: a node's in `nodes.ray_options`, a named actor's in `cluster.actors`.

The walk reads every module of the packages. Outside those two modules no call passes a named actor's
`lifetime=`, `namespace=` or `get_if_exists=` (nor a dict literal holding them, for `**`), no code calls
`get_actor` (`cluster.actors.find_actor` does), no module defines a namespace constant of its own, and no
`.options(...)` or `ray.remote(...)` call spells a node policy option (resources, retries, runtime env,
scheduling): those come from `nodes.ray_options` and are passed on as `**options`. Passing a dict
(`.options(**opts)`) and call-site options (`name=`, `num_returns=`, `max_concurrency=`) stay free, so the
coordinator's hot path is not flagged.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("typesys", "nodes", "engine", "serve", "cluster")
#: A line that spells these words for something else (an OpenLineage namespace, a one-off task that is no
#: node) says so with this comment, and the walk spares it.
SPARED = "# not Ray"
#: The two homes.
HOMES = frozenset({ROOT / "nodes" / "ray_options.py", ROOT / "cluster" / "actors.py"})
#: What makes a named, detached actor: `cluster.actors.named_actor` / `find_actor` only.
ACTOR_KEYWORDS = frozenset({"lifetime", "namespace", "get_if_exists"})
#: A node's policy as Ray options: `nodes.ray_options` only.
POLICY_KEYWORDS = frozenset(
    {
        "num_cpus",
        "num_gpus",
        "memory",
        "resources",
        "runtime_env",
        "max_retries",
        "retry_exceptions",
        "max_restarts",
        "scheduling_strategy",
        "label_selector",
    }
)


def _called_name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return ""


def _assigned_names(node: ast.AST) -> list[str]:
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, ast.AnnAssign):
        targets = [node.target]
    return [t.id for t in targets if isinstance(t, ast.Name)]


def stray_options(path: Path, root: Path = ROOT) -> list[str]:
    """`file:line: what` for every Ray option of `path` that belongs in one of the two homes."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[str] = []

    lines = path.read_text(encoding="utf-8").splitlines()

    def hit(node: ast.AST, what: str) -> None:
        line = getattr(node, "lineno", 0)
        if 0 < line <= len(lines) and SPARED in lines[line - 1]:
            return
        found.append(f"{path.relative_to(root)}:{line}: {what}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            called = _called_name(node)
            keywords = {k.arg for k in node.keywords if k.arg is not None}
            for keyword in sorted(keywords & ACTOR_KEYWORDS):
                hit(node, f"{called}({keyword}=...)")
            if called in ("options", "remote"):
                for keyword in sorted(keywords & POLICY_KEYWORDS):
                    hit(node, f"{called}({keyword}=...)")
            if called == "get_actor":
                hit(node, "get_actor(...)")
        elif isinstance(node, ast.Dict):
            for key in node.keys:
                if isinstance(key, ast.Constant) and key.value in ACTOR_KEYWORDS:
                    hit(node, f"{{{key.value!r}: ...}}")
        for name in _assigned_names(node):
            if name.upper().endswith("NAMESPACE"):
                hit(node, f"{name} = ...")
    return sorted(found)


def _sources() -> list[Path]:
    paths = [p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))]
    return [p for p in paths if p not in HOMES]


def test_ray_options_are_made_only_in_their_two_homes() -> None:
    sources = _sources()
    assert len(sources) > 100, "the walk found too few modules to prove anything"
    found = [hit for path in sources for hit in stray_options(path)]
    assert not found, (
        "make a node's Ray options with nodes.ray_options (task_options, actor_options) and named actors "
        "with cluster.actors (named_actor, find_actor, NAMESPACE), then pass them as **options:\n"
        + "\n".join(found)
    )


def test_the_homes_exist_and_hold_what_the_walk_refuses_elsewhere() -> None:
    # Were the homes renamed, the walk would spare nothing and prove nothing.
    for home in HOMES:
        assert home.exists(), home
    spelled = [hit for home in HOMES for hit in stray_options(home)]
    assert any("lifetime" in hit for hit in spelled) and any("NAMESPACE" in hit for hit in spelled)


def test_the_walk_catches_each_kind_and_spares_passing_options_on(tmp_path: Path) -> None:
    module = tmp_path / "probe.py"
    module.write_text(
        "import ray\n"
        "OUR_NAMESPACE = 'rayweave'\n"
        "a = Cls.options(name='x', namespace='rayweave', lifetime='detached').remote()\n"
        "b = ray.get_actor('x', namespace=OUR_NAMESPACE)\n"
        "c = task.options(num_cpus=0, max_retries=0).remote()\n"
        "d = ray.remote(num_gpus=1)(f)\n"
        "e = Cls.options(**{'get_if_exists': True}).remote()\n"
        # What the hot path does: options made elsewhere, passed on with call-site options.
        "f = task.options(**opts).remote(1)\n"
        "g = actor.run.options(num_returns=2).remote()\n"
        "h = fn.options(**made, num_returns=2, name='wf/a:collect').remote()\n"
        "i = Cls.options(**made, max_concurrency=1).remote()\n"
        "j = {'namespace': 'file', 'name': path}  # not Ray: an OpenLineage dataset\n",
        encoding="utf-8",
    )
    assert stray_options(module, tmp_path) == [
        "probe.py:2: OUR_NAMESPACE = ...",
        "probe.py:3: options(lifetime=...)",
        "probe.py:3: options(namespace=...)",
        "probe.py:4: get_actor(...)",
        "probe.py:4: get_actor(namespace=...)",
        "probe.py:5: options(max_retries=...)",
        "probe.py:5: options(num_cpus=...)",
        "probe.py:6: remote(num_gpus=...)",
        "probe.py:7: {'get_if_exists': ...}",
    ]
