"""The Python workflow builder: code that produces exactly the canonical workflow document.

    wf = Workflow("mean-of-csv")
    path = wf.input("path", "String")
    load = wf.add("load", "builtin/read_csv@1", path=path)
    mean = wf.add("mean", "builtin/column_mean@1", table=load.table, params={"column": "x"})
    wf.output("mean", mean.value)
    doc = wf.to_doc()          # a WorkflowDoc; wf.to_json() gives its JSON text

Inputs are bound with keyword arguments (or ``inputs={...}`` for port names that clash with the builder's
own keywords): a port handle (``load.table``, ``load["table"]``, ``load.port("table")``) binds
``"load.table"``, a node handle alone binds ``"load"`` (its single output), an input handle binds
``"$inputs.path"``, and any other Python value binds the constant ``{"value": ...}``.

Node types are given by id (``"builtin/read_csv@1"``) or as a `NodeDefinition` made with ``@node``; the
definitions used are remembered in ``wf.definitions`` so that compiling can add them to a copy of the catalog.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.errors import WorkflowBuildError, WorkflowLoadError
from engine.workflow.document import FORMAT, WorkflowDoc, is_identifier
from engine.workflow.loader import doc_from_data, dump_workflow

if TYPE_CHECKING:
    from nodes import Catalog, NodeDefinition, NodeSpec


class _Missing:
    def __repr__(self) -> str:
        return "<no default>"


_MISSING: Any = _Missing()


@dataclass(frozen=True)
class InputHandle:
    """A workflow input; bind it to a port to feed the input's value (``"$inputs.<name>"``)."""

    workflow: Workflow
    name: str

    def reference(self) -> str:
        """The reference text of this handle in the document."""
        return f"$inputs.{self.name}"


@dataclass(frozen=True)
class PortHandle:
    """Output ``port`` of node ``node`` (``"node.port"``)."""

    workflow: Workflow
    node: str
    port: str

    def reference(self) -> str:
        """The reference text of this handle in the document."""
        return f"{self.node}.{self.port}"


class NodeHandle:
    """A node added to a workflow. Its output ports are ``handle.<port>``, ``handle["port"]`` or
    ``handle.port("name")``; binding the handle itself refers to the node's single output.
    """

    def __init__(self, workflow: Workflow, node_id: str, type_id: str, spec: NodeSpec | None) -> None:
        self._workflow = workflow
        self._id = node_id
        self._type_id = type_id
        self._spec = spec

    @property
    def id(self) -> str:
        """The node's id in the workflow."""
        return self._id

    @property
    def type_id(self) -> str:
        """The node type id (``plugin/name@major``)."""
        return self._type_id

    @property
    def workflow(self) -> Workflow:
        """The workflow this node belongs to."""
        return self._workflow

    def port(self, name: str) -> PortHandle:
        """The output port ``name``; when the node type is known an unknown port is an error listing them."""
        if self._spec is not None and name not in self._spec.output_names:
            raise WorkflowBuildError(
                f"workflow {self._workflow.name!r}: node {self._id!r} ({self._type_id}) has no output port "
                f"{name!r}; its outputs are {self._spec.output_names}"
            )
        return PortHandle(self._workflow, self._id, name)

    def __getitem__(self, name: str) -> PortHandle:
        return self.port(name)

    def __getattr__(self, name: str) -> PortHandle:
        # Only called for names that are not real attributes: those are port names. Dunder and private
        # names must fail normally so copy/pickle protocols keep working.
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self.port(name)
        except WorkflowBuildError as exc:
            raise AttributeError(str(exc)) from None

    def reference(self) -> str:
        """The reference text of the node alone (its single output)."""
        return self._id

    def __repr__(self) -> str:
        return f"NodeHandle({self._id!r}, {self._type_id!r})"


Handle = InputHandle | PortHandle | NodeHandle


class Workflow:
    """Build a workflow document in Python; see the module docstring for an example.

    ``catalog`` (optional) lets the builder check port names of node types given by id as you write.
    """

    def __init__(self, name: str, *, description: str | None = None, catalog: Catalog | None = None) -> None:
        if not name:
            raise WorkflowBuildError("a workflow needs a non-empty name")
        self.name = name
        self.description = description
        self._catalog = catalog
        self._inputs: dict[str, dict[str, Any]] = {}
        self._nodes: dict[str, dict[str, Any]] = {}
        self._outputs: dict[str, str] = {}
        self._definitions: dict[str, NodeDefinition] = {}

    @property
    def definitions(self) -> dict[str, NodeDefinition]:
        """The local node definitions used by this workflow, by type id (a copy)."""
        return dict(self._definitions)

    def input(
        self, name: str, type: Any, default: Any = _MISSING, description: str | None = None
    ) -> InputHandle:
        """Declare workflow input ``name`` of ``type`` (typesys text, a typesys Type or a Python annotation)."""
        self._check_name(name, "input")
        if name in self._inputs:
            raise WorkflowBuildError(f"workflow {self.name!r}: input {name!r} is declared twice")
        spec: dict[str, Any] = {"type": _type_text(type, self.name, name)}
        if default is not _MISSING:
            spec["default"] = default
        if description is not None:
            spec["description"] = description
        self._inputs[name] = spec
        return InputHandle(self, name)

    def add(
        self,
        node_id: str,
        node_type: str | NodeDefinition,
        *,
        inputs: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        retry: Any = None,
        timeout_s: float | None = None,
        resources: Any = None,
        cache: bool | None = None,
        convert: bool | None = None,
        description: str | None = None,
        **bindings: Any,
    ) -> NodeHandle:
        """Add node ``node_id`` of ``node_type`` with its input bindings, params and per-node overrides.

        ``retry`` is a `RetryPolicy` or its JSON form (fields left out keep the node type's policy);
        ``resources`` a `Resources` or its JSON form; ``cache=False`` turns caching off for this node;
        ``convert=True`` lets the compiler insert conversion nodes for its inputs.
        """
        self._check_name(node_id, "node id")
        if node_id in self._nodes:
            raise WorkflowBuildError(f"workflow {self.name!r}: node id {node_id!r} is used twice")
        type_id, spec = self._resolve_type(node_id, node_type)
        all_bindings = {**dict(inputs or {}), **bindings}
        node: dict[str, Any] = {"type": type_id}
        if all_bindings:
            node["in"] = {port: self._binding(node_id, port, value) for port, value in all_bindings.items()}
        if params:
            node["params"] = dict(params)
        if retry is not None:
            node["retry"] = _policy_json(retry)
        if timeout_s is not None:
            node["timeout_s"] = timeout_s
        if resources is not None:
            node["resources"] = _policy_json(resources)
        for key, value in (("cache", cache), ("convert", convert), ("description", description)):
            if value is not None:
                node[key] = value
        self._nodes[node_id] = node
        return NodeHandle(self, node_id, type_id, spec)

    def output(self, name: str, ref: Handle) -> None:
        """Expose ``ref`` (a port, a node with a single output, or an input) as workflow output ``name``."""
        self._check_name(name, "output")
        if name in self._outputs:
            raise WorkflowBuildError(f"workflow {self.name!r}: output {name!r} is declared twice")
        if not isinstance(ref, InputHandle | PortHandle | NodeHandle):
            raise WorkflowBuildError(
                f"workflow {self.name!r}: output {name!r} must be a port, node or input handle of this "
                f"workflow, got {type(ref).__name__}"
            )
        self._check_owner(ref, f"output {name!r}")
        self._outputs[name] = ref.reference()

    def to_data(self) -> dict[str, Any]:
        """The canonical JSON-compatible form of the document."""
        return self.to_doc().to_data()

    def to_doc(self) -> WorkflowDoc:
        """The canonical `WorkflowDoc` of this workflow."""
        data: dict[str, Any] = {"format": FORMAT, "name": self.name}
        if self.description is not None:
            data["description"] = self.description
        data["inputs"] = {k: dict(v) for k, v in self._inputs.items()}
        data["nodes"] = {k: dict(v) for k, v in self._nodes.items()}
        data["outputs"] = dict(self._outputs)
        try:
            return doc_from_data(data, source=f"workflow {self.name!r}")
        except WorkflowLoadError as exc:
            # e.g. timeout_s=-1: report it as a misuse of the builder, naming the field.
            raise WorkflowBuildError(str(exc)) from None

    def to_json(self) -> str:
        """The canonical JSON text of the document."""
        return dump_workflow(self.to_doc(), "json")

    def _check_name(self, name: str, what: str) -> None:
        if not isinstance(name, str) or not is_identifier(name):
            raise WorkflowBuildError(
                f"workflow {self.name!r}: {what} {name!r} must be an identifier (letters, digits and '_', "
                "not starting with a digit)"
            )

    def _check_owner(self, handle: Handle, where: str) -> None:
        if handle.workflow is not self:
            raise WorkflowBuildError(
                f"workflow {self.name!r}: {where} uses a handle of workflow {handle.workflow.name!r}; "
                "handles only bind within the workflow that made them"
            )

    def _binding(self, node_id: str, port: str, value: Any) -> Any:
        if not is_identifier(port):
            raise WorkflowBuildError(f"workflow {self.name!r}: node {node_id!r}: {port!r} is not a port name")
        if isinstance(value, InputHandle | PortHandle | NodeHandle):
            self._check_owner(value, f"node {node_id!r} input {port!r}")
            return value.reference()
        if isinstance(value, list | tuple) and any(
            isinstance(item, InputHandle | PortHandle | NodeHandle) for item in value
        ):
            # A list with handles binds a list port element by element (ADR 005); constants keep their place.
            return [self._binding(node_id, port, item) for item in value]
        return {"value": value}

    def _resolve_type(self, node_id: str, node_type: Any) -> tuple[str, NodeSpec | None]:
        spec = getattr(node_type, "spec", None)
        if spec is not None:
            known = self._definitions.get(spec.id)
            if known is not None and known is not node_type:
                raise WorkflowBuildError(
                    f"workflow {self.name!r}: node {node_id!r} uses a second definition of {spec.id}; "
                    "give one of them another name or version"
                )
            self._definitions[spec.id] = node_type
            return str(spec.id), spec
        if not isinstance(node_type, str):
            raise WorkflowBuildError(
                f"workflow {self.name!r}: node {node_id!r}: the node type must be an id like "
                f"'builtin/add@1' or a @node definition, got {type(node_type).__name__}"
            )
        local = self._definitions.get(node_type)
        if local is not None:
            return node_type, local.spec
        if self._catalog is not None:
            try:
                return node_type, self._catalog.get(node_type).spec
            except KeyError as exc:
                raise WorkflowBuildError(f"workflow {self.name!r}: node {node_id!r}: {exc}") from None
        return node_type, None


def _type_text(value: Any, workflow: str, name: str) -> str:
    if isinstance(value, str):
        return value
    import typesys  # deferred: building a document from type strings does not need the type system

    if isinstance(value, typesys.Type):
        return str(value)
    try:
        return str(typesys.from_annotation(value))
    except TypeError as exc:
        raise WorkflowBuildError(f"workflow {workflow!r}: input {name!r}: {exc}") from None


def _policy_json(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    to_json = getattr(value, "to_json", None)
    if callable(to_json):
        data = to_json()
        # Only what differs from "unset" belongs in the document; Resources.to_json lists None fields too.
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in data.items() if v is not None}
    raise WorkflowBuildError(
        f"expected a mapping or a policy object with to_json(), got {type(value).__name__}"
    )
