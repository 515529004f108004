"""`make demo`: a short tour of what rayweave does today.

Until the engine lands this shows the port type system at work: parsing, subtyping with reasons, coercions and
runtime checks with the path of the offending element.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def main() -> None:
    """Print a few type checks of sample ports."""
    import typesys

    console = Console()
    pairs = [
        ("Int", "Number"),
        ("List[Int]", "List[Float]"),
        ("Table[x: Float, y: String]", "Table[x: Float]"),
        ("String", "Int"),
        ("Float", "Int"),
        ("Bool", "Int"),
    ]
    table = Table(title="Can an output of this type feed an input of that type?")
    for column in ("source", "target", "assignable", "coercion"):
        table.add_column(column)
    for source, target in pairs:
        s, t = typesys.parse(source), typesys.parse(target)
        verdict = typesys.is_assignable(s, t)
        coercion = typesys.find_coercion(s, t)
        how = (
            "-"
            if coercion is None
            else f"{coercion.kind} " + " -> ".join(step.node or "" for step in coercion.steps)
        )
        table.add_row(source, target, "yes" if verdict else f"no: {verdict.reason}", how)
    console.print(table)
    try:
        typesys.check([1, 2, "x"], typesys.parse("List[Int]"), full=True)
    except typesys.TypeCheckError as error:
        console.print(f"runtime check of [1, 2, 'x'] against List[Int]: {error}")


if __name__ == "__main__":
    main()
