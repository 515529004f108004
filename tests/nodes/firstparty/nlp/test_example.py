"""examples/nlp_reviews.json runs on Ray with the NLP plugin, through the Python block of docs/guides/nlp.md."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from cluster.settings import Settings

ROOT = Path(__file__).resolve().parents[4]
GUIDE = ROOT / "docs" / "guides" / "nlp.md"


def test_the_guides_example_runs_the_reviews_workflow(ray_session: Any, tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), flags=re.DOTALL)
    assert len(blocks) == 1
    namespace: dict[str, Any] = {"__name__": "nlp_guide"}
    exec(compile(blocks[0], f"{GUIDE.name} (python block)", "exec"), namespace)
    settings = Settings(home=tmp_path / "home", data_roots=[ROOT / "examples" / "data"])
    result = namespace["run_reviews"](ROOT, settings)

    nearest = result.outputs["nearest"].to_pylist()
    assert [m["rank"] for m in nearest] == [1, 2, 3]
    scores = [m["score"] for m in nearest]
    assert scores == sorted(scores, reverse=True)
    # The reviews about things breaking are the nearest to the question, whatever words they use.
    assert {m["id"] for m in nearest[:2]} <= {2, 4, 6}
    assert set(nearest[0]) == {
        "query_row",
        "query_text",
        "rank",
        "score",
        "corpus_row",
        "id",
        "product",
        "text",
        "compound",
    }
    unhappy = {r["product"]: r["negative"] for r in result.outputs["unhappy"].to_pylist()}
    assert unhappy == {
        "blender": 1,
        "kettle": 1,
    }  # VADER: reviews 2 and 4 (review 6's "support" reads positive)


def test_every_nodes_docstring_example_validates(nlp_nodes: dict[str, Any]) -> None:
    from engine.compile import validate
    from nodes import Catalog
    from nodes.docexamples import docstring_document

    catalog = Catalog.builtin()
    catalog.extend(nlp_nodes.values())
    documents = {type_id: docstring_document(d) for type_id, d in nlp_nodes.items()}
    assert {t for t, doc in documents.items() if doc is not None} == {
        "nlp/tokenize@1",
        "nlp/sentiment@1",
        "nlp/embed@1",
        "nlp/similarity_search@1",
        "nlp/generate@1",
        "nlp/generate_rows@1",
    }
    for type_id, document in documents.items():
        if document is not None:
            errors = [d.render() for d in validate(document, catalog) if d.severity == "error"]
            assert not errors, f"{type_id}: {errors}"
