"""Ask for a draft, check it with the compiler, and have the model repair it from the diagnostics.

Round 0 sends the description; each repair round sends back the previous answer and the compiler's errors
(`prompt.repair_message`), up to `rounds` repair rounds. An answer that is not a JSON object is diagnosed like
a workflow file that is not one (`RW001` invalid syntax, `RW002` not a workflow document) and repaired the
same way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.drafts.errors import DraftNotValidError
from engine.drafts.prompt import repair_message, system_message

if TYPE_CHECKING:
    from engine.compile.diagnostics import Diagnostic
    from nodes import Catalog

#: Repair rounds when the caller does not say.
DEFAULT_ROUNDS = 2
#: Most errors listed in the message of a draft that stayed invalid (all are in `diagnostics`).
_SHOWN = 5
_FENCE = re.compile(r"```(?:json|JSON)?\s*\n(.*?)```", re.DOTALL)

#: Sends chat messages, returns the answer's text (`chat.complete` bound to an endpoint).
Ask = Callable[[Sequence[Mapping[str, str]]], str]


@dataclass(frozen=True)
class Draft:
    """A workflow document without errors, the diagnostics that remain (warnings, notes) and the repair rounds
    it took (0: the first answer was valid)."""

    document: dict[str, Any]
    diagnostics: list[Diagnostic] = field(default_factory=list)
    rounds: int = 0

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "workflow": self.document,
            "diagnostics": [d.to_json() for d in self.diagnostics],
            "repair_rounds": self.rounds,
        }


def parse_answer(text: str) -> tuple[dict[str, Any] | None, list[Diagnostic]]:
    """The JSON object in a model's answer (inside a ```json fence, or from the first `{` to the last `}`), or
    None with the diagnostic saying why there is none."""
    from engine.compile.diagnostics import error

    fenced = _FENCE.search(text)
    body = fenced.group(1) if fenced else text
    start, end = body.find("{"), body.rfind("}")
    if start < 0 or end < start:
        return None, [
            error("RW001", "the answer holds no JSON object", hint="answer with the JSON object only")
        ]
    try:
        value = json.loads(body[start : end + 1])
    except ValueError as exc:
        return None, [error("RW001", f"the answer's JSON does not parse: {exc}", hint="send valid JSON")]
    if not isinstance(value, dict):
        return None, [error("RW002", "the answer's JSON is not an object")]
    return value, []


def _diagnose(text: str, catalog: Catalog) -> tuple[dict[str, Any] | None, list[Diagnostic]]:
    from engine.compile import validate

    document, problems = parse_answer(text)
    if document is None:
        return None, problems
    return document, validate(document, catalog)


def draft_workflow(description: str, catalog: Catalog, ask: Ask, *, rounds: int = DEFAULT_ROUNDS) -> Draft:
    """A draft workflow for `description`, checked against `catalog`, repaired for up to `rounds` rounds.

    Raises `DraftNotValidError` (with the last draft and its diagnostics) when errors remain after the last
    round, and whatever `ask` raises (`DraftEndpointError`) when the endpoint fails."""
    if not description.strip():
        raise ValueError("the description is empty: say in words what the workflow should do")
    messages: list[dict[str, str]] = [
        {"role": "system", "content": system_message(catalog)},
        {"role": "user", "content": description.strip()},
    ]
    document: dict[str, Any] | None = None
    diagnostics: list[Diagnostic] = []
    for round_ in range(rounds + 1):
        answer = ask(messages)
        document, diagnostics = _diagnose(answer, catalog)
        if document is not None and not any(d.severity == "error" for d in diagnostics):
            return Draft(document, diagnostics, round_)
        messages += [
            {"role": "assistant", "content": answer},
            {"role": "user", "content": repair_message(diagnostics)},
        ]
    errors = [d for d in diagnostics if d.severity == "error"]
    listed = "; ".join(d.render() for d in errors[:_SHOWN])
    more = f"; and {len(errors) - _SHOWN} more" if len(errors) > _SHOWN else ""
    raise DraftNotValidError(
        f"the model's draft still has {len(errors)} error(s) after {rounds} repair round(s): {listed}{more}."
        " Describe the workflow more precisely, allow more rounds, or fix the draft by hand",
        document=document,
        diagnostics=diagnostics,
        rounds=rounds,
    )
