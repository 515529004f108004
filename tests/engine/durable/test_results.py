"""The durable result store: round trips, atomic visibility, locations."""

from __future__ import annotations

import pickle
from pathlib import Path

import pyarrow as pa
import pytest

from engine.durable.errors import ResultNotFoundError
from engine.durable.results import ResultStore
from nodes import SKIP


def test_tables_go_as_arrow_and_other_values_as_pickle(tmp_path: Path) -> None:
    results = ResultStore(tmp_path / "results")
    table = pa.table({"x": [1.0, 2.5]})
    location = results.put("run1", "load", {"table": table, "rows": 2, "skipped": SKIP})
    assert location == str((tmp_path / "results" / "run1" / "load").resolve())
    files = sorted(p.suffix for p in Path(location).iterdir())
    assert files == [".arrow", ".json", ".pkl", ".pkl"]
    back = results.get("run1", "load")
    assert back["table"].equals(table) and back["rows"] == 2 and back["skipped"] is SKIP
    assert results.get("run1", "load", ("rows",)) == {"rows": 2}


def test_missing_results_and_ports_are_reported_by_name(tmp_path: Path) -> None:
    results = ResultStore(tmp_path)
    with pytest.raises(ResultNotFoundError, match="node 'n' in run 'r'"):
        results.get("r", "n")
    results.put("r", "n", {"out": 1})
    with pytest.raises(ResultNotFoundError, match=r"no port\(s\) \['other'\]"):
        results.get("r", "n", ("other",))


def test_an_entry_is_invisible_until_its_meta_file_lands(tmp_path: Path) -> None:
    results = ResultStore(tmp_path)
    folder = tmp_path / "r" / "n"
    folder.mkdir(parents=True)
    (folder / "abc-0.pkl").write_bytes(pickle.dumps(1))  # a writer died after the data, before the meta
    assert not results.exists("r", "n")
    results.put("r", "n", {"out": 2})
    assert results.exists("r", "n") and results.get("r", "n") == {"out": 2}
    assert not [p for p in folder.iterdir() if p.name.startswith(".")], "no temporary file is left behind"


def test_rewriting_a_node_replaces_its_result(tmp_path: Path) -> None:
    results = ResultStore(tmp_path)
    results.put("r", "n", {"out": 1})
    results.put("r", "n", {"out": 2})
    assert results.get("r", "n") == {"out": 2}


def test_node_ids_with_any_characters_and_uri_roots(tmp_path: Path) -> None:
    results = ResultStore(f"file://{tmp_path}")
    results.put("r", "m[0]/x:y", {"out": "v"})
    assert results.get("r", "m[0]/x:y") == {"out": "v"}
    assert results.location("r", "m[0]/x:y").startswith("file://")


def test_only_the_uri_travels_when_pickled(tmp_path: Path) -> None:
    results = ResultStore(tmp_path)
    results.put("r", "n", {"out": 1})
    copy = pickle.loads(pickle.dumps(results))
    assert copy.uri == results.uri and copy.get("r", "n") == {"out": 1}


def test_blobs_and_deleting_a_run(tmp_path: Path) -> None:
    results = ResultStore(tmp_path)
    results.put_blob("r", "resume.pkl", b"data")
    results.put("r", "n", {"out": 1})
    assert results.get_blob("r", "resume.pkl") == b"data"
    results.delete_run("r")
    assert not results.exists("r", "n")
    with pytest.raises(ResultNotFoundError):
        results.get_blob("r", "resume.pkl")
    results.delete_run("never-existed")


def test_the_result_store_location_comes_from_the_settings(tmp_path: Path) -> None:
    from cluster.settings import Settings
    from engine.durable.results import default_results_uri

    assert default_results_uri(Settings(home=tmp_path)) == str(tmp_path / "results")
    elsewhere = str(tmp_path / "shared-results")
    assert default_results_uri(Settings(home=tmp_path, results_uri=elsewhere)) == elsewhere
