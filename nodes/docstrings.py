"""Read node docstrings: a description plus per-port descriptions from Google-style sections.

```
Add two numbers.

Args:
    a: the first number.
    b: the second number.

Returns:
    out: their sum.
```
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field

__all__ = ["ParsedDoc", "parse_docstring"]

_SECTION = re.compile(r"^(Args|Arguments|Parameters|Params|Inputs|Returns|Outputs|Example|Examples):\s*$")
_ITEM = re.compile(r"^(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


@dataclass(frozen=True)
class ParsedDoc:
    """A parsed docstring: the free text, argument and return descriptions, and an example block if any."""

    description: str = ""
    args: dict[str, str] = field(default_factory=dict)
    returns: dict[str, str] = field(default_factory=dict)
    returns_text: str = ""
    example: str = ""


def _items(lines: list[str]) -> dict[str, str]:
    indents = [len(line) - len(line.lstrip()) for line in lines if line.strip()]
    base = min(indents) if indents else 0
    items: dict[str, str] = {}
    name: str | None = None
    for line in lines:
        stripped = line.strip()
        if not stripped:
            continue
        indent = len(line) - len(line.lstrip())
        match = _ITEM.match(stripped) if indent == base else None
        if match:
            name = match.group(1).lstrip("*")
            items[name] = match.group(2).strip()
        elif name is not None:
            # A deeper-indented line continues the previous item's description.
            items[name] = (items[name] + " " + stripped).strip()
    return items


def parse_docstring(doc: str | None) -> ParsedDoc:
    """Split a docstring into description, `Args:` items, `Returns:` items and an `Example:` block."""
    text = inspect.cleandoc(doc or "")
    if not text:
        return ParsedDoc()
    free: list[str] = []
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        match = _SECTION.match(line.strip()) if not line.startswith(" ") else None
        if match:
            key = match.group(1)
            key = {
                "Arguments": "Args",
                "Parameters": "Args",
                "Params": "Args",
                "Inputs": "Args",
                "Outputs": "Returns",
                "Examples": "Example",
            }.get(key, key)
            current = sections.setdefault(key, [])
            continue
        if current is None:
            free.append(line)
        else:
            current.append(line)
    returns_lines = sections.get("Returns", [])
    returns = _items(returns_lines)
    example_lines = sections.get("Example", [])
    example = inspect.cleandoc("\n".join(example_lines)) if example_lines else ""
    return ParsedDoc(
        description="\n".join(free).strip(),
        args=_items(sections.get("Args", [])),
        returns=returns,
        returns_text=" ".join(line.strip() for line in returns_lines if line.strip()) if not returns else "",
        example=example,
    )
