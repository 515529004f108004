"""The file guard: built-in file nodes in a run reach only their data roots (nodes.builtin.paths).

The nodes run here under a `NodeContext` carrying the policy, as the engine installs it in a task.
"""

from __future__ import annotations

import os
import string
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nodes import context
from nodes.access import AccessPolicy
from nodes.builtin import data, paths, sql_files
from nodes.builtin.errors import AccessDeniedError, DataFileError
from nodes.definition import NodeDefinition


def run_in(policy: AccessPolicy, node: NodeDefinition, inputs: Mapping[str, Any], **params: Any) -> Any:
    """Call ``node`` as the engine does inside a run with ``policy``."""
    with context.use(context.NodeContext("run", "n", 1, policy=policy)):
        return node.invoke(dict(inputs), params)


class Layout:
    """An installation in a temporary folder: its home with secrets, a data root inside it, files outside."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.home = base / "home"
        self.root = self.home / "data"
        self.root.mkdir(parents=True)
        self.key = self.home / "admin.key"
        self.key.write_text("rw_secret\n")
        self.outside = base / "outside.csv"
        self.outside.write_text("secret\n42\n")
        self.inside = self.root / "points.csv"
        self.inside.write_text("x\n1\n2\n")
        self.policy = AccessPolicy(
            data_roots=(str(self.root),), protected=(str(self.home), str(self.key), "/proc", "/sys", "/dev")
        )


@pytest.fixture
def lay(tmp_path: Path) -> Layout:
    return Layout(tmp_path)


def test_a_file_in_a_data_root_is_read(lay: Layout) -> None:
    table = run_in(lay.policy, data.read_csv, {"path": str(lay.inside)})["table"]
    assert table.column("x").to_pylist() == [1, 2]


@pytest.mark.parametrize(
    "path",
    [
        "{home}/admin.key",
        "{home}/rayweave.db",
        "{base}/outside.csv",
        "{root}/../admin.key",
        "{root}/../../outside.csv",
        "/proc/self/environ",
        "/etc/passwd",
    ],
)
def test_paths_outside_the_data_roots_are_refused(lay: Layout, path: str) -> None:
    given_path = path.format(home=lay.home, base=lay.base, root=lay.root)
    with pytest.raises(AccessDeniedError) as refused:
        run_in(lay.policy, data.read_csv, {"path": given_path})
    message = str(refused.value)
    assert "builtin/read_csv@1: input port 'path'" in message and repr(given_path) in message
    assert "RAYWEAVE_DATA_ROOTS" in message and str(lay.root) in message
    assert "rw_secret" not in message and "42" not in message


def test_a_symlink_out_of_the_root_is_refused_and_one_within_it_is_followed(lay: Layout) -> None:
    (lay.root / "key.csv").symlink_to(lay.key)
    (lay.root / "folder").symlink_to(lay.base)
    (lay.root / "alias.csv").symlink_to(lay.inside)
    for escape in ("key.csv", "folder/outside.csv"):
        with pytest.raises(AccessDeniedError, match=r"outside the data roots|protected location"):
            run_in(lay.policy, data.read_csv, {"path": str(lay.root / escape)})
    table = run_in(lay.policy, data.read_csv, {"path": str(lay.root / "alias.csv")})["table"]
    assert table.num_rows == 2


def test_the_home_stays_protected_under_a_root_that_holds_it(lay: Layout) -> None:
    # An administrator made the parent of the home a data root: the home's files are still out of reach.
    wide = AccessPolicy(data_roots=(str(lay.base),), protected=lay.policy.protected)
    with pytest.raises(AccessDeniedError, match="protected location"):
        run_in(wide, data.read_csv, {"path": str(lay.key)})
    assert run_in(wide, data.read_csv, {"path": str(lay.outside)})["table"].num_rows == 1
    # A root that is a protected place itself opens nothing in it.
    home_root = AccessPolicy(data_roots=(str(lay.home),), protected=lay.policy.protected)
    with pytest.raises(AccessDeniedError, match="protected location"):
        run_in(home_root, data.read_csv, {"path": str(lay.inside)})


def test_proc_is_protected_even_under_a_root_of_everything(lay: Layout) -> None:
    everything = AccessPolicy(data_roots=("/",), protected=lay.policy.protected)
    with pytest.raises(AccessDeniedError, match="protected location"):
        run_in(everything, data.read_csv, {"path": "/proc/self/environ"})


def test_no_data_roots_means_no_file(lay: Layout) -> None:
    with pytest.raises(AccessDeniedError, match=r"outside the data roots .*\(none configured\)"):
        run_in(AccessPolicy(), data.read_csv, {"path": str(lay.inside)})


def test_a_symlink_swapped_in_after_the_check_is_not_followed(
    lay: Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = lay.root / "in"
    folder.mkdir()
    (folder / "points.csv").write_text("x\n1\n")
    decoy = lay.base / "decoy"
    decoy.mkdir()
    (decoy / "points.csv").write_text("x\n666\n")
    real_locate = paths.locate

    def racing_locate(policy: AccessPolicy, path: str, where: str) -> paths.Located:
        located = real_locate(policy, path, where)
        # The attacker's move between the check and the open: the folder becomes a symlink out of the root.
        os.rename(folder, lay.base / "moved")
        folder.symlink_to(decoy)
        return located

    monkeypatch.setattr(paths, "locate", racing_locate)
    with pytest.raises(AccessDeniedError, match="changed into a symlink"):
        run_in(lay.policy, data.read_csv, {"path": str(folder / "points.csv")})


def test_a_file_swapped_for_a_symlink_after_the_check_is_not_followed(
    lay: Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_locate = paths.locate

    def racing_locate(policy: AccessPolicy, path: str, where: str) -> paths.Located:
        located = real_locate(policy, path, where)
        lay.inside.unlink()
        lay.inside.symlink_to(lay.key)
        return located

    monkeypatch.setattr(paths, "locate", racing_locate)
    with pytest.raises(AccessDeniedError, match="changed into a symlink"):
        run_in(lay.policy, data.read_csv, {"path": str(lay.inside)})


def test_a_fifo_in_the_root_fails_without_hanging(lay: Layout) -> None:
    fifo = lay.root / "pipe.csv"
    os.mkfifo(fifo)
    with pytest.raises(DataFileError, match="not a regular file"):
        run_in(lay.policy, data.read_csv, {"path": str(fifo)})


def test_writes_stay_in_the_roots(lay: Layout) -> None:
    table = pa.table({"v": [1, 2]})
    target = lay.root / "new" / "deeper" / "t.parquet"
    out = run_in(lay.policy, data.write_parquet, {"table": table, "path": str(target)})
    assert out["path"] == str(target) and pq.read_table(target).equals(table)
    for outside in (lay.base / "t.parquet", lay.home / "admin.key", lay.root / ".." / "x.parquet"):
        with pytest.raises(AccessDeniedError, match="builtin/write_parquet@1: input port 'path'"):
            run_in(lay.policy, data.write_parquet, {"table": table, "path": str(outside)})
    assert lay.key.read_text() == "rw_secret\n" and not (lay.base / "t.parquet").exists()
    assert not (lay.home / "x.parquet").exists()


def test_a_write_through_a_symlink_out_is_refused(lay: Layout) -> None:
    (lay.root / "key.parquet").symlink_to(lay.key)
    (lay.root / "up").symlink_to(lay.base)
    table = pa.table({"v": [1]})
    for target in ("key.parquet", "up/new.parquet"):
        with pytest.raises(AccessDeniedError):
            run_in(lay.policy, data.write_parquet, {"table": table, "path": str(lay.root / target)})
    assert lay.key.read_text() == "rw_secret\n" and not (lay.base / "new.parquet").exists()


def test_a_symlink_swapped_in_at_the_target_is_replaced_not_followed(
    lay: Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = lay.root / "out.parquet"
    real_locate = paths.locate

    def racing_locate(policy: AccessPolicy, path: str, where: str) -> paths.Located:
        located = real_locate(policy, path, where)
        target.symlink_to(lay.key)
        return located

    monkeypatch.setattr(paths, "locate", racing_locate)
    table = pa.table({"v": [7]})
    run_in(lay.policy, data.write_parquet, {"table": table, "path": str(target)})
    assert lay.key.read_text() == "rw_secret\n"
    assert not target.is_symlink() and pq.read_table(target).equals(table)


def test_a_failed_write_leaves_the_old_file(lay: Layout) -> None:
    target = lay.root / "keep.parquet"
    old = pa.table({"v": [1]})
    pq.write_table(old, target)
    union = pa.UnionArray.from_sparse(pa.array([0], type=pa.int8()), [pa.array([1])])  # not for Parquet
    with pytest.raises(DataFileError, match="cannot write"):
        run_in(lay.policy, data.write_parquet, {"table": pa.table({"u": union}), "path": str(target)})
    assert pq.read_table(target).equals(old)
    assert sorted(p.name for p in lay.root.iterdir()) == ["keep.parquet", "points.csv"]


@pytest.fixture
def partitioned(lay: Layout) -> Path:
    folder = lay.root / "sales"
    for year in (2024, 2025):
        part = folder / f"year={year}"
        part.mkdir(parents=True)
        pq.write_table(pa.table({"amount": [year * 1.0, 1.0]}), part / "part-0.parquet")
    return folder


def test_a_directory_reads_like_arrow_reads_it(lay: Layout, partitioned: Path) -> None:
    table = run_in(lay.policy, data.read_parquet, {"path": str(partitioned)})["table"]
    expected = pq.read_table(partitioned)
    assert table.sort_by("amount").equals(expected.sort_by("amount"))
    assert "year" in table.column_names
    only = run_in(lay.policy, data.read_parquet, {"path": str(partitioned)}, columns=["amount"])["table"]
    assert only.column_names == ["amount"] and only.num_rows == 4


def test_a_symlink_inside_a_directory_read_is_refused(lay: Layout, partitioned: Path) -> None:
    pq.write_table(pa.table({"amount": [0.0]}), lay.base / "other.parquet")
    (partitioned / "year=2026").mkdir()
    (partitioned / "year=2026" / "x.parquet").symlink_to(lay.base / "other.parquet")
    with pytest.raises(AccessDeniedError, match=r"year=2026/x\.parquet' is a symlink inside the directory"):
        run_in(lay.policy, data.read_parquet, {"path": str(partitioned)})


def test_sql_files_reads_only_files_in_the_roots(lay: Layout) -> None:
    pq.write_table(pa.table({"v": [1, 2, 3]}), lay.root / "v.parquet")
    out = run_in(
        lay.policy,
        sql_files.sql_files,
        {"files": {"t": str(lay.root / "v.parquet")}},
        query=("SELECT sum(v) AS s FROM t"),
    )["table"]
    assert out.to_pylist() == [{"s": 6}]
    with pytest.raises(AccessDeniedError, match=r"sql_files@1: input port 'files': key 't'"):
        run_in(lay.policy, sql_files.sql_files, {"files": {"t": str(lay.outside)}}, query="SELECT * FROM t")


def test_sql_files_reads_gzip_through_the_descriptor(lay: Layout) -> None:
    import gzip

    (lay.root / "p.tsv.gz").write_bytes(gzip.compress(b"a\tb\n1\t2\n"))
    out = run_in(
        lay.policy, sql_files.sql_files, {"files": {"p": str(lay.root / "p.tsv.gz")}}, query="SELECT * FROM p"
    )["table"]
    assert out.to_pylist() == [{"a": 1, "b": 2}]


def test_outside_a_run_nothing_is_restricted(lay: Layout) -> None:
    assert context.current().policy is AccessPolicy.UNRESTRICTED
    table = data.read_csv.invoke({"path": str(lay.outside)}, {})["table"]
    assert table.num_rows == 1


_PARTS = st.sampled_from(["a", "b", "..", ".", "", "link", "data", "home", "admin.key"])


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Layout]:
    lay = Layout(tmp_path_factory.mktemp("tree"))
    (lay.root / "a" / "b").mkdir(parents=True)
    (lay.root / "link").symlink_to(lay.home)
    (lay.root / "a" / "link").symlink_to(lay.root / "a" / "b")
    yield lay


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(_PARTS, max_size=8), leaf=st.text(string.ascii_letters + "._-", max_size=5))
def test_locate_never_leaves_the_roots(tree: Layout, parts: list[str], leaf: str) -> None:
    path = os.path.join(str(tree.root), *parts, leaf)
    try:
        located = paths.locate(tree.policy, path, "test")
    except AccessDeniedError:
        return
    real = os.path.realpath(path)
    assert located.real == real and (real == str(tree.root) or real.startswith(str(tree.root) + "/"))
    assert os.path.join(located.root, *located.parts) == real
