"""The node run context: ids, logger, progress and partial outputs all go through the engine's callback."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

import pytest

from nodes import context
from nodes.context import NodeContext


def _recorder() -> tuple[list[tuple[str, dict[str, Any]]], Any]:
    events: list[tuple[str, dict[str, Any]]] = []

    def emit(kind: str, payload: Mapping[str, Any]) -> None:
        events.append((kind, dict(payload)))

    return events, emit


def test_outside_a_run_current_is_a_harmless_no_op() -> None:
    ctx = context.current()
    assert ctx.run_id == "" and ctx.attempt == 1
    ctx.logger.info("nobody listens")
    ctx.progress(0.5)
    ctx.emit_output(1)


def test_use_installs_and_restores_the_context() -> None:
    _events, emit = _recorder()
    ctx = NodeContext(run_id="r1", node_id="n1", attempt=2, emit=emit)
    with context.use(ctx):
        assert context.current() is ctx
        inner = NodeContext(run_id="r1", node_id="n2")
        with context.use(inner):
            assert context.current() is inner
        assert context.current() is ctx
    assert context.current() is not ctx


def test_logger_progress_and_outputs_become_events() -> None:
    events, emit = _recorder()
    with context.use(NodeContext(run_id="r", node_id="n", attempt=3, emit=emit)):
        log = context.current().logger
        log.debug("not an event")
        log.info("loaded %d rows", 10)
        log.warning("careful")
        context.current().progress(0.25, "quarter")
        context.current().emit_output({"partial": 1})
        context.current().emit_output({"partial": 2})
    assert events == [
        ("node.log", {"level": "INFO", "message": "loaded 10 rows", "attempt": 3}),
        ("node.log", {"level": "WARNING", "message": "careful", "attempt": 3}),
        ("node.progress", {"fraction": 0.25, "message": "quarter", "attempt": 3}),
        ("node.output", {"index": 0, "value": {"partial": 1}, "attempt": 3}),
        ("node.output", {"index": 1, "value": {"partial": 2}, "attempt": 3}),
    ]


def test_logger_also_forwards_to_python_logging(caplog: pytest.LogCaptureFixture) -> None:
    with (
        caplog.at_level(logging.INFO, logger="rayweave.node"),
        context.use(NodeContext(run_id="r", node_id="n")),
    ):
        context.current().logger.info("hello %s", "world")
    assert [r.getMessage() for r in caplog.records] == ["hello world"]
    assert caplog.records[0].node_id == "n"  # type: ignore[attr-defined]


def test_progress_rejects_fractions_outside_unit_interval() -> None:
    with pytest.raises(ValueError, match=r"between 0\.0 and 1\.0"):
        NodeContext(node_id="n").progress(1.5)


def test_contexts_are_per_thread() -> None:
    seen: list[str] = []

    def worker() -> None:
        seen.append(context.current().node_id)

    with context.use(NodeContext(node_id="main")):
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
    assert seen == [""]
