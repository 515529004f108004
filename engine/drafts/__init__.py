"""Natural language to a draft workflow through an OpenAI-compatible chat completions endpoint.

`draft_workflow` asks the model for a `rayweave.workflow/1` document (the prompt carries the node catalog and the
document format, `prompt`), parses the answer, checks it with the compiler (`engine.compile.validate`) and, while
errors remain, sends the diagnostics (stable `RWnnn` codes) back to the model for up to `rounds` repair rounds.
The endpoint, model and key come from the settings (`chat.endpoint_from`). Nothing is stored here: saving a
draft is the caller's choice (`POST /v1/workflows/draft` with `save`, `rayweave draft --save`).
"""

from __future__ import annotations

from engine.drafts.chat import ChatEndpoint, complete, endpoint_from
from engine.drafts.draft import Draft, draft_workflow, parse_answer
from engine.drafts.errors import DraftConfigError, DraftEndpointError, DraftError, DraftNotValidError

__all__ = [
    "ChatEndpoint",
    "Draft",
    "DraftConfigError",
    "DraftEndpointError",
    "DraftError",
    "DraftNotValidError",
    "complete",
    "draft_workflow",
    "endpoint_from",
    "parse_answer",
]
