"""`parse(text)`: a hand-written recursive-descent parser for the canonical type text.

Grammar (whitespace is free between tokens)::

    type    := atom ("|" atom)*
    atom    := "(" type ")" | "{" [field ("," field)*] "}" | "~" IDENT | IDENT ["[" args "]"]
    field   := (IDENT | STRING) ["?"] ":" type

Names: the primitives; `List[T]`, `Dict[K, V]`, `Tuple[A, ...]` (`Tuple[]` is empty), `Optional[T]`,
`Union[A, B]`; `Table` / `Table[x: Float, y?: String]`; `NDArray` / `NDArray[float64]` /
`NDArray[float64, 2]` / `NDArray[*, 2]` (`Tensor` is an alias); `Model` / `Model[flavor]`; `None` is an
alias of `Null`. Bare `List`, `Dict` and `Tuple` are not types (say what they hold). Other names are
nominal types of the registry; failing that, a capital letter optionally followed by digits (`T`, `K2`) is
a type variable, as is any `~name`.

Types nest at most `MAX_TYPE_DEPTH` levels (brackets, braces and parentheses together); deeper text is refused
with `TypeTooDeepError` (a `TypeParseError`) before the recursion could exhaust the stack. Real port types
stay far below it.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

from typesys.errors import TypeParseError, TypeTooDeepError
from typesys.types import (
    NULL,
    PRIMITIVE_NAMES,
    DictType,
    Field,
    ListType,
    ModelType,
    NDArrayType,
    Primitive,
    RecordType,
    TableType,
    TupleType,
    Type,
    TypeVar,
    union,
)

if TYPE_CHECKING:
    from typesys.registry import TypeRegistry

__all__ = ["MAX_TYPE_DEPTH", "parse"]

#: How many levels of nested types `parse` accepts (`List[List[Int]]` is 3). Every recursive function on types
#: (printing, subtyping, unification, checks) stays well inside Python's recursion limit below it.
MAX_TYPE_DEPTH = 32

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<int>[0-9]+)
      | (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<punct>[\[\]{}(),:|?~*])
    )""",
    re.VERBOSE,
)
_TYPEVAR = re.compile(r"[A-Z][0-9]*\Z")
_KNOWN = "a type name (Int, String, List[...], Table, ...), a record {...}, a type variable or '('"


def parse(text: str, registry: TypeRegistry | None = None) -> Type:
    """Read a type from its text; `str(parse(s))` is canonical and `parse(str(t)) == t`.

    Names of nominal types are looked up in `registry`. Raises `TypeParseError` with the 0-based position
    and what was expected there (`TypeTooDeepError` for types nested deeper than `MAX_TYPE_DEPTH`).
    """
    if not isinstance(text, str):
        raise TypeError(f"parse() needs a string, got {type(text).__name__}")
    return _Parser(text, registry).parse_all()


class _Parser:
    def __init__(self, text: str, registry: TypeRegistry | None) -> None:
        self.text = text
        self.registry = registry
        self.pos = 0
        self.depth = 0

    # --- tokens --------------------------------------------------------------------------------------

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self) -> tuple[str, str] | None:
        """The next token as (kind, text) without consuming it; None at the end."""
        self.skip_space()
        if self.pos >= len(self.text):
            return None
        m = _TOKEN.match(self.text, self.pos)
        if m is None or m.lastgroup is None:
            return ("bad", self.text[self.pos])
        return (m.lastgroup, m.group(m.lastgroup))

    def advance(self) -> tuple[str, str]:
        tok = self.peek()
        assert tok is not None  # callers peek first
        self.pos += len(tok[1])
        return tok

    def error(self, expected: str) -> TypeParseError:
        tok = self.peek()
        return TypeParseError(self.text, self.pos, expected, None if tok is None else tok[1])

    def expect(self, punct: str, expected: str | None = None) -> None:
        tok = self.peek()
        if tok is None or tok != ("punct", punct):
            raise self.error(expected or repr(punct))
        self.advance()

    def accept(self, punct: str) -> bool:
        if self.peek() == ("punct", punct):
            self.advance()
            return True
        return False

    # --- grammar -------------------------------------------------------------------------------------

    def parse_all(self) -> Type:
        t = self.parse_type()
        if self.peek() is not None:
            raise self.error("'|' or the end of the type")
        return t

    def parse_type(self) -> Type:
        # Every nested type goes through here, so this one counter bounds the recursion of the whole parser.
        self.depth += 1
        if self.depth > MAX_TYPE_DEPTH:
            self.skip_space()
            raise TypeTooDeepError(self.text, self.pos, MAX_TYPE_DEPTH)
        try:
            members = [self.parse_atom()]
            while self.accept("|"):
                members.append(self.parse_atom())
        finally:
            self.depth -= 1
        return members[0] if len(members) == 1 else union(*members)

    def parse_atom(self) -> Type:
        tok = self.peek()
        if tok is None or tok[0] not in ("ident", "punct"):
            raise self.error(_KNOWN)
        if tok == ("punct", "("):
            self.advance()
            inner = self.parse_type()
            self.expect(")")
            return inner
        if tok == ("punct", "{"):
            self.advance()
            return RecordType(self.parse_fields("}"))
        if tok == ("punct", "~"):
            self.advance()
            name = self.peek()
            if name is None or name[0] != "ident":
                raise self.error("a type variable name after '~'")
            self.advance()
            return TypeVar(name[1])
        if tok[0] != "ident":
            raise self.error(_KNOWN)
        start = self.pos
        self.advance()
        return self.parse_named(tok[1], start)

    def parse_named(self, name: str, start: int) -> Type:
        if name in PRIMITIVE_NAMES:
            return Primitive(name)
        if name == "None":
            return NULL
        if name in ("List", "Optional"):
            self.expect("[", f"'[' after {name} (e.g. {name}[Int])")
            item = self.parse_type()
            self.expect("]", "']' or '|'")
            return ListType(item) if name == "List" else union(item, NULL)
        if name == "Dict":
            return self.parse_dict()
        if name in ("Tuple", "Union"):
            return self.parse_tuple_or_union(name, start)
        if name == "Table":
            if not self.accept("["):
                return TableType(None)
            return TableType(self.parse_fields("]"))
        if name in ("NDArray", "Tensor"):
            return self.parse_ndarray()
        if name == "Model":
            return self.parse_model()
        return self.parse_declared(name, start)

    def parse_dict(self) -> Type:
        self.expect("[", "'[' after Dict (e.g. Dict[String, Int])")
        key = self.parse_type()
        self.expect(",", "',' between the key and value types of Dict")
        value = self.parse_type()
        self.expect("]", "']' or '|'")
        return DictType(key, value)

    def parse_tuple_or_union(self, name: str, start: int) -> Type:
        self.expect("[", f"'[' after {name}")
        items = self.parse_list("]")
        if name == "Tuple":
            return TupleType(tuple(items))
        if not items:
            self.pos = start
            raise self.error("Union with at least one member")
        return union(*items)

    def parse_model(self) -> Type:
        if not self.accept("["):
            return ModelType(None)
        flavor = self.peek()
        if flavor is None or flavor[0] != "ident":
            raise self.error("a model flavor name (e.g. sklearn)")
        self.advance()
        self.expect("]")
        return ModelType(flavor[1])

    def parse_declared(self, name: str, start: int) -> Type:
        """A name that is no built-in: a nominal type of the registry, else a type variable."""
        nominal = self.registry.nominal(name) if self.registry is not None else None
        if nominal is not None:
            return nominal
        if _TYPEVAR.match(name):
            return TypeVar(name)
        self.pos = start
        raise self.error(
            f"a built-in or registered type name ({name!r} is neither; nominal types need the registry that "
            "declares them)"
        )

    def parse_list(self, close: str) -> list[Type]:
        items: list[Type] = []
        if self.accept(close):
            return items
        items.append(self.parse_type())
        while self.accept(","):
            items.append(self.parse_type())
        self.expect(close, f"',' or {close!r}")
        return items

    def parse_fields(self, close: str) -> tuple[Field, ...]:
        fields: list[Field] = []
        seen: set[str] = set()
        if self.accept(close):
            return ()
        while True:
            start = self.pos
            fields.append(self.parse_field())
            if fields[-1].name in seen:
                self.pos = start
                self.skip_space()
                raise self.error(f"a field name not used before ({fields[-1].name!r} is repeated)")
            seen.add(fields[-1].name)
            if self.accept(close):
                return tuple(fields)
            self.expect(",", f"',' or {close!r}")

    def parse_field(self) -> Field:
        tok = self.peek()
        if tok is None or tok[0] not in ("ident", "string"):
            raise self.error("a field name")
        if tok[0] == "ident":
            name = tok[1]
        else:
            try:
                name = str(json.loads(tok[1]))
            except ValueError:
                raise self.error("a field name in valid JSON string syntax") from None
            if not name:
                raise self.error("a non-empty field name")
        self.advance()
        required = not self.accept("?")
        self.expect(":", "':' after the field name")
        return Field(name, self.parse_type(), required)

    def parse_ndarray(self) -> NDArrayType:
        if not self.accept("["):
            return NDArrayType(None, None)
        dtype: str | None = None
        tok = self.peek()
        if tok == ("punct", "*"):
            self.advance()
        elif tok is not None and tok[0] == "ident":
            self.advance()
            dtype = tok[1]
        else:
            raise self.error("a dtype name (e.g. float64) or '*'")
        rank: int | None = None
        if self.accept(","):
            tok = self.peek()
            if tok is None or tok[0] != "int":
                raise self.error("the rank, a non-negative integer")
            self.advance()
            rank = int(tok[1])
        self.expect("]", "',' or ']'")
        return NDArrayType(dtype, rank)
