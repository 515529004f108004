"""The catalog: an explicit collection of node definitions, searchable by id, name, category, tag and type.

There is no global catalog: `Catalog.builtin()` builds a new one holding the built-in library, plugins add
their definitions to a catalog they are given, and the engine and the HTTP API receive it explicitly.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from typing import Any

import typesys
from nodes.definition import NodeDefinition
from nodes.errors import DuplicateNodeTypeError, UnknownNodeTypeError
from nodes.spec import NodeSpec

__all__ = ["Catalog"]


def _as_type(value: typesys.Type | str, registry: Any) -> typesys.Type:
    if isinstance(value, str):
        return typesys.parse(value, registry=registry)
    return value


def _fits(source: typesys.Type, target: typesys.Type, registry: Any) -> bool:
    """Whether a value of `source` may flow into `target`, solving type variables on either side."""
    if typesys.is_assignable(source, target, registry=registry):
        return True
    if not (typesys.free_vars(source) or typesys.free_vars(target)):
        return False
    try:
        subst = typesys.unify([(source, target)], registry=registry)
    except (TypeError, ValueError):
        return False
    return bool(
        typesys.is_assignable(
            typesys.substitute(source, subst), typesys.substitute(target, subst), registry=registry
        )
    )


class Catalog:
    """Node definitions by type id (`plugin/name@major`).

    `get(id)` finds one (an id without `@major` means the highest major); `find(...)` filters by name,
    plugin, category, tag and by port type; `to_json()` exports every spec for the HTTP API and editors.
    """

    def __init__(self, definitions: Iterable[NodeDefinition] = (), *, registry: Any = None) -> None:
        self.registry = registry
        self._by_id: dict[str, NodeDefinition] = {}
        for definition in definitions:
            self.add(definition)

    @classmethod
    def builtin(cls, *, registry: Any = None) -> Catalog:
        """A new catalog holding the built-in node library (plugin `builtin`)."""
        # Imported here: the built-in library is large and loads only when a catalog of it is asked for.
        from nodes.builtin import definitions

        return cls(definitions(), registry=registry)

    def copy(self) -> Catalog:
        """A new, independent plain `Catalog` holding the same definitions and registry.

        Adding to the copy leaves this catalog unchanged. The copy is always a plain `Catalog`, whatever the
        class of this one: a catalog whose definitions come from elsewhere (the server's live plugins)
        overrides this to return a snapshot of what it holds now. Use it instead of calling the catalog's
        constructor, whose signature subclasses need not share.
        """
        return Catalog(self.definitions(), registry=self.registry)

    def add(self, definition: NodeDefinition, *, replace: bool = False) -> None:
        """Add a definition; a different definition under an existing id is an error unless `replace`."""
        if not isinstance(definition, NodeDefinition):
            raise TypeError(f"Catalog.add takes a NodeDefinition (made with @node), got {definition!r}")
        type_id = definition.spec.id
        existing = self._by_id.get(type_id)
        if existing is not None and existing is not definition and not replace:
            raise DuplicateNodeTypeError(
                f"node type {type_id} is already in the catalog (version {existing.spec.version}); bump the "
                f"major version of the new one, or pass replace=True to swap it"
            )
        self._by_id[type_id] = definition

    def extend(self, definitions: Iterable[NodeDefinition], *, replace: bool = False) -> None:
        """Add several definitions (see `add`)."""
        for definition in definitions:
            self.add(definition, replace=replace)

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[NodeDefinition]:
        return iter(self.definitions())

    def __contains__(self, type_id: object) -> bool:
        if not isinstance(type_id, str):
            return False
        try:
            self.get(type_id)
        except UnknownNodeTypeError:
            return False
        return True

    def __repr__(self) -> str:
        return f"<Catalog of {len(self)} node types>"

    def get(self, type_id: str) -> NodeDefinition:
        """The definition with this id; `plugin/name` without `@major` gives the highest major.

        Raises `UnknownNodeTypeError` (a KeyError) naming close matches and the versions that exist.
        """
        found = self._by_id.get(type_id)
        if found is not None:
            return found
        if "@" not in type_id:
            candidates = [d for d in self._by_id.values() if f"{d.spec.plugin}/{d.spec.name}" == type_id]
            if candidates:
                return max(candidates, key=lambda d: d.spec.major)
        raise UnknownNodeTypeError(self._unknown_message(type_id))

    def _unknown_message(self, type_id: str) -> str:
        base = type_id.split("@", 1)[0]
        versions = sorted(
            (d.spec.id, d.spec.version)
            for d in self._by_id.values()
            if f"{d.spec.plugin}/{d.spec.name}" == base
        )
        if versions:
            listed = ", ".join(f"{i} (version {v})" for i, v in versions)
            return f"unknown node type {type_id!r}: the versions that exist are {listed}"
        ids = list(self._by_id)
        names = {f"{d.spec.plugin}/{d.spec.name}": d.spec.id for d in self._by_id.values()}
        close = difflib.get_close_matches(type_id, ids, n=5, cutoff=0.6)
        close += [names[n] for n in difflib.get_close_matches(base, list(names), n=5, cutoff=0.6)]
        # Also match on the bare name, so that `builtin/sumation@1` or `mean` still finds `builtin/mean@1`.
        bare = base.rsplit("/", 1)[-1]
        by_name = {d.spec.name: d.spec.id for d in self._by_id.values()}
        close += [by_name[n] for n in difflib.get_close_matches(bare, list(by_name), n=5, cutoff=0.6)]
        unique = list(dict.fromkeys(close))[:5]
        plugin = base.split("/", 1)[0] if "/" in base else ""
        if plugin and plugin not in ("builtin", "local"):
            # A plugin's node with no version left (removed, or never installed): say so, and what is there.
            refs = sorted({str(getattr(d, "plugin_ref", "")) for d in self._by_id.values()} - {""})
            hint = f"; did you mean {', '.join(unique)}?" if unique else ""
            return (
                f"unknown node type {type_id!r}: no version of {base} is installed; installed plugins: "
                f"{', '.join(refs) or 'none'}{hint} (`rayweave plugins install {plugin}` installs a plugin)"
            )
        hint = f"; did you mean {', '.join(unique)}?" if unique else "; `rayweave nodes` lists the node types"
        return f"unknown node type {type_id!r}{hint}"

    def definitions(self) -> list[NodeDefinition]:
        """Every definition, sorted by id."""
        return [self._by_id[k] for k in sorted(self._by_id)]

    def specs(self) -> list[NodeSpec]:
        """Every spec, sorted by id."""
        return [d.spec for d in self.definitions()]

    def find(
        self,
        *,
        name: str | None = None,
        plugin: str | None = None,
        category: str | None = None,
        tag: str | None = None,
        accepts: typesys.Type | str | None = None,
        produces: typesys.Type | str | None = None,
    ) -> list[NodeSpec]:
        """Specs matching every given filter, sorted by id.

        `accepts=T`: nodes with an input port a value of type T may be connected to; `produces=T`: nodes with
        an output port whose values are of type T. Types may be given as text (`"List[Int]"`). Type variables
        in port signatures are solved, so `first(xs: List[T])` accepts `List[Int]`.
        """
        accepts_t = _as_type(accepts, self.registry) if accepts is not None else None
        produces_t = _as_type(produces, self.registry) if produces is not None else None
        result = []
        for spec in self.specs():
            if name is not None and spec.name != name:
                continue
            if plugin is not None and spec.plugin != plugin:
                continue
            if category is not None and spec.category != category:
                continue
            if tag is not None and tag not in spec.tags:
                continue
            if accepts_t is not None and not any(
                _fits(accepts_t, p.type, self.registry) for p in spec.inputs
            ):
                continue
            if produces_t is not None and not any(
                _fits(p.type, produces_t, self.registry) for p in spec.outputs
            ):
                continue
            result.append(spec)
        return result

    def to_json(self) -> dict[str, Any]:
        """`{"nodes": [spec.to_json(), ...]}` sorted by id: stable and JSON-serializable."""
        return {"nodes": [spec.to_json() for spec in self.specs()]}
