"""The errors of typesys: one small hierarchy, each error also subclassing the matching builtin."""

from __future__ import annotations

from typing import Any

__all__ = [
    "AnnotationError",
    "CoercionError",
    "TypeCheckError",
    "TypeParseError",
    "TypeTooDeepError",
    "TypesysError",
    "UnificationError",
]


class TypesysError(Exception):
    """Base of every typesys error."""


class TypeParseError(TypesysError, ValueError):
    """A type string is malformed; `.position` is the 0-based offset where `.expected` was wanted."""

    def __init__(self, text: str, position: int, expected: str, found: str | None = None) -> None:
        self.text = text
        self.position = position
        self.expected = expected
        self.found = found
        got = "end of text" if found is None else repr(found)
        pointer = f"\n  {text}\n  {' ' * position}^"
        super().__init__(
            f"cannot parse type {text!r}: at position {position} expected {expected}, found {got}{pointer}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Errors cross Ray task boundaries by pickle, which by default would call __init__ with .args only.
        return (type(self), (self.text, self.position, self.expected, self.found), {"args": self.args})


class TypeTooDeepError(TypeParseError):
    """A type text nests deeper than the parser allows (`typesys.parse.MAX_TYPE_DEPTH` levels).

    Refused before anything recursive runs on it, so a hostile type (`List[List[...]]` a thousand levels deep)
    is an ordinary parse error instead of a `RecursionError`. The message shows only the start of the text.
    """

    def __init__(self, text: str, position: int, limit: int) -> None:
        self.limit = limit
        super().__init__(
            text, position, f"at most {limit} levels of nested types", text[position : position + 1]
        )
        shown = text if len(text) <= 80 else text[:60] + "..."
        self.args = (
            f"cannot parse type {shown!r}: it nests deeper than {limit} levels (at position {position}); "
            "flatten it, e.g. name a record type for the inner part",
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.text, self.position, self.limit), {"args": self.args})


class AnnotationError(TypesysError, TypeError):
    """A Python annotation has no equivalent in the port type language; the message names it."""


class UnificationError(TypesysError, TypeError):
    """Type variables cannot be solved: the message names both conflicting sides."""


class TypeCheckError(TypesysError, TypeError):
    """A runtime value does not match its type.

    `.path` locates the offending element inside the value (`[3].name`, empty for the value itself),
    `.expected` is the type text and `.actual` describes what was found.
    """

    def __init__(self, path: str, expected: str, actual: str, detail: str = "") -> None:
        self.path = path
        self.expected = expected
        self.actual = actual
        self.detail = detail
        where = f"{path}: " if path else ""
        extra = f" ({detail})" if detail else ""
        super().__init__(f"{where}expected {expected}, got {actual}{extra}")

    def __reduce__(self) -> tuple[Any, ...]:
        # See TypeParseError.__reduce__; the state keeps a message extended by with_context.
        return (type(self), (self.path, self.expected, self.actual, self.detail), {"args": self.args})

    def with_context(self, context: str) -> TypeCheckError:
        """A copy whose message is prefixed by `context` (e.g. the workflow, node and port)."""
        err = TypeCheckError(self.path, self.expected, self.actual, self.detail)
        err.args = (f"{context}: {self.args[0]}",)
        return err


class CoercionError(TypesysError, ValueError):
    """A value cannot be converted to the target type (or no coercion exists between two types)."""
