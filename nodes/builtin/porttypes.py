"""Port type aliases of the built-in library for types Python annotations cannot express directly.

Each alias is ``Annotated[<python type>, <typesys type>]``: static checkers see the Python type, and the
SDK takes the typesys type from the metadata.
"""

from __future__ import annotations

from typing import Annotated, Any

from typesys import ANY, NUMBER, STRING, DictType, ListType, RecordType, union

Number = Annotated[float, NUMBER]
"""``Number``: an Int or a Float, accepted without coercion (``float`` alone would mean ``Float`` only)."""

Records = Annotated[list[dict[str, Any]], ListType(RecordType(()))]
"""``List[{}]``: a list of records with any fields, what ``table_to_records`` produces."""

RecordsOrDicts = Annotated[
    list[dict[str, Any]], union(ListType(RecordType(())), ListType(DictType(STRING, ANY)))
]
"""A list of records or of ``Dict[String, Any]``: the two sources of the records -> Table coercions."""
