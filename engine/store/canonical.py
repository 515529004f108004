"""The canonical JSON form of workflow documents and request fingerprints, and their content hashes.

Canonical JSON sorts keys and drops insignificant whitespace, so two documents that differ only in key order or
formatting hash the same; the hash identifies a version's content across installations (export/import, migrate).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any


def document_to_dict(document: Any) -> dict[str, Any]:
    """Turn a workflow document (a mapping, or a `WorkflowDoc` with `to_data()`) into a JSON dict.

    The dict is a deep copy made through a JSON round trip, so later changes to the caller's object cannot alter
    what the store saved, and anything that is not JSON fails here with the offending type named.
    """
    if isinstance(document, Mapping):
        data: Any = document
    elif hasattr(document, "to_data"):
        data = document.to_data()
    elif hasattr(document, "to_json"):
        data = document.to_json()
    elif hasattr(document, "model_dump"):
        data = document.model_dump(mode="json", by_alias=True, exclude_none=True)
    else:
        raise TypeError(
            f"a workflow document must be a dict or a WorkflowDoc, not {type(document).__name__}; "
            "pass the canonical JSON form"
        )
    if isinstance(data, str):
        data = json.loads(data)
    copy = json.loads(canonical_json(data))
    if not isinstance(copy, dict):
        raise TypeError(f"a workflow document must be a JSON object, not {type(copy).__name__}")
    return copy


def canonical_json(value: Any) -> str:
    """Serialize `value` as canonical JSON (sorted keys, compact, UTF-8 text, no NaN)."""
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"value is not canonical JSON: {exc}; store only JSON data (dicts, lists, str, numbers)"
        ) from exc


def content_hash(value: Any) -> str:
    """SHA-256 (hex) of the canonical JSON of `value`."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()
