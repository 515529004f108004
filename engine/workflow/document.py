"""The canonical workflow document (`"format": "rayweave.workflow/1"`) as pydantic v2 models.

The JSON form is the source of truth: the Python builder produces it, the HTTP API stores it, and
`WorkflowDoc.to_data()` writes it back exactly (fields that were not given stay absent). Every model forbids
unknown keys so a typo (`"retires"`) is an error naming the field, not a silently ignored setting.

References in a node's ``in`` and in ``outputs`` are parsed into `PortReference` (``node.port`` or ``node``
alone for a node with a single output), `InputReference` (``$inputs.name``) and, in ``in`` only,
`Constant` (``{"value": ...}``) and `ListReference` (a JSON array of the other three, binding a list port
element by element); they serialize back to the same text.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    StringConstraints,
    WithJsonSchema,
)

FORMAT = "rayweave.workflow/1"
"""The value of ``format`` in every document of this version."""

IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
"""Node ids, input/output names and port names: identifier-like, so ``node.port`` is unambiguous."""

_ID_RE = re.compile(rf"^{IDENTIFIER}$")
_REF_RE = re.compile(
    rf"^(?:\$inputs\.(?P<input>{IDENTIFIER})|(?P<node>{IDENTIFIER})(?:\.(?P<port>{IDENTIFIER}))?)$"
)
_REF_PATTERN = rf"^(\$inputs\.{IDENTIFIER}|{IDENTIFIER}(\.{IDENTIFIER})?)$"

Identifier = Annotated[str, StringConstraints(pattern=rf"^{IDENTIFIER}$", max_length=128)]

# Numbers keep their JSON spelling (an int stays an int), so a document round-trips byte for byte; the bound
# sits on each member so the published JSON Schema uses standard keywords.
NonNegative = Annotated[int, Field(ge=0)] | Annotated[float, Field(ge=0)]
Positive = Annotated[int, Field(gt=0)] | Annotated[float, Field(gt=0)]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PortReference(_Frozen):
    """``node.port`` (``port`` set) or ``node`` alone (``port`` None: the node's single output)."""

    node: str
    port: str | None = None

    def __str__(self) -> str:
        return self.node if self.port is None else f"{self.node}.{self.port}"


class InputReference(_Frozen):
    """``$inputs.name``: the workflow input ``name``."""

    name: str

    def __str__(self) -> str:
        return f"$inputs.{self.name}"


class Constant(_Frozen):
    """``{"value": ...}``: a constant bound to an input port."""

    value: Any

    def __str__(self) -> str:
        return f"{{value: {self.value!r}}}"


class ListReference(_Frozen):
    """``["a.out", "b", "$inputs.c", {"value": 3}]``: a list port bound element by element."""

    items: tuple[PortReference | InputReference | Constant, ...]

    def __str__(self) -> str:
        return "[" + ", ".join(str(item) for item in self.items) + "]"


def parse_reference(text: str) -> PortReference | InputReference:
    """Parse a reference string; raises ValueError saying which forms are accepted."""
    match = _REF_RE.match(text)
    if match is None:
        raise ValueError(
            f"{text!r} is not a reference; write 'node.port', 'node' (a node with one output) or "
            "'$inputs.name', or bind a constant as {\"value\": ...}"
        )
    if match.group("input") is not None:
        return InputReference(name=match.group("input"))
    return PortReference(node=match.group("node"), port=match.group("port"))


def _parse_binding(value: Any) -> Any:
    if isinstance(value, PortReference | InputReference | Constant | ListReference):
        return value
    if isinstance(value, list | tuple):
        if not value:
            raise ValueError('an empty list binds no values; bind an empty list constant as {"value": []}')
        items = []
        for index, item in enumerate(value):
            if isinstance(item, list | tuple):
                raise ValueError(
                    f"item {index} of a list binding is itself a list; a list binding holds references "
                    "('node.port', '$inputs.name') and constants ({\"value\": ...}); bind nested lists as constants"
                )
            try:
                items.append(_parse_binding(item))
            except ValueError as exc:
                raise ValueError(f"item {index} of the list: {exc}") from None
        return ListReference(items=tuple(items))
    if isinstance(value, str):
        return parse_reference(value)
    if isinstance(value, dict):
        if set(value) != {"value"}:
            keys = sorted(value)
            raise ValueError(f'a constant is written {{"value": ...}} with exactly that key, got keys {keys}')
        return Constant(value=value["value"])
    raise ValueError(
        f"expected a reference string ('node.port', '$inputs.name'), a constant {{\"value\": ...}} or, for a "
        f"list port, a list of those; got {type(value).__name__}"
    )


def _parse_output_ref(value: Any) -> Any:
    if isinstance(value, PortReference | InputReference):
        return value
    if isinstance(value, str):
        return parse_reference(value)
    raise ValueError(f"a workflow output is a reference string ('node.port'), got {type(value).__name__}")


def _dump_binding(value: PortReference | InputReference | Constant | ListReference) -> Any:
    if isinstance(value, Constant):
        return {"value": value.value}
    if isinstance(value, ListReference):
        return [_dump_binding(item) for item in value.items]
    return str(value)


_REF_SCHEMA: dict[str, Any] = {
    "type": "string",
    "pattern": _REF_PATTERN,
    "description": "A reference: 'node.port', 'node' (a node with a single output) or '$inputs.name'.",
}

_CONSTANT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"value": {"description": "The constant value."}},
    "required": ["value"],
    "additionalProperties": False,
}

Binding = Annotated[
    PortReference | InputReference | Constant | ListReference,
    PlainValidator(_parse_binding),
    PlainSerializer(_dump_binding),
    WithJsonSchema(
        {
            "oneOf": [
                _REF_SCHEMA,
                _CONSTANT_SCHEMA,
                {
                    "type": "array",
                    "minItems": 1,
                    "items": {"oneOf": [_REF_SCHEMA, _CONSTANT_SCHEMA]},
                    "description": "A list port bound element by element: references and constants.",
                },
            ]
        }
    ),
]
"""What an input port is bound to in a node's ``in``."""

OutputRef = Annotated[
    PortReference | InputReference,
    PlainValidator(_parse_output_ref),
    PlainSerializer(str),
    WithJsonSchema(_REF_SCHEMA),
]
"""What a workflow output refers to."""


class InputDoc(_Frozen):
    """A declared workflow input: its type (typesys text), optional default and description.

    Whether a default was given is `has_default` (a default of ``null`` is a real default).
    """

    type: str = Field(min_length=1, description="The input's type in typesys syntax, e.g. 'List[Int]'.")
    default: Any = Field(default=None, description="Value used when the caller gives none.")
    description: str | None = None

    @property
    def has_default(self) -> bool:
        """True when the document gives a default (even ``null``)."""
        return "default" in self.model_fields_set


class RetryDoc(_Frozen):
    """Per-node retry overrides; fields left out keep the node type's declared policy."""

    max_attempts: int | None = Field(default=None, ge=1, description="Attempts in total, counting the first.")
    backoff: Literal["fixed", "exponential"] | None = None
    initial_s: NonNegative | None = None
    max_s: NonNegative | None = None
    jitter: bool | None = None
    retry_on: list[str] | None = Field(
        default=None, description="Exception class names worth retrying; empty retries every exception."
    )


class ResourcesDoc(_Frozen):
    """Per-node resource overrides (Ray task options); fields left out keep the node type's declaration."""

    num_cpus: NonNegative | None = None
    num_gpus: NonNegative | None = None
    memory: int | None = Field(default=None, ge=0, description="Bytes of memory to reserve.")
    custom: dict[str, NonNegative] | None = Field(default=None, description="Custom Ray resources.")


class NodeDoc(_Frozen):
    """One node of a workflow: its type, bound inputs, params and per-node overrides."""

    type: str = Field(
        min_length=1,
        pattern=r"^[^/\s]+/[^@\s]+@[0-9]+$",
        description="Node type id 'plugin/name@major'.",
    )
    in_: dict[Identifier, Binding] = Field(default_factory=dict, alias="in")
    params: dict[Identifier, Any] = Field(default_factory=dict)
    retry: RetryDoc | None = None
    timeout_s: Positive | None = Field(default=None, description="Per-attempt timeout in seconds.")
    resources: ResourcesDoc | None = None
    cache: bool | None = Field(default=None, description="False: never cache this node's results.")
    convert: bool | None = Field(
        default=None,
        description="True: the compiler may insert conversion nodes for this node's inputs.",
    )
    description: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class WorkflowDoc(_Frozen):
    """A whole workflow document (``"format": "rayweave.workflow/1"``)."""

    format: Literal["rayweave.workflow/1"] = Field(description="Always 'rayweave.workflow/1'.")
    name: str = Field(min_length=1, max_length=200)
    description: str | None = None
    inputs: dict[Identifier, InputDoc] = Field(default_factory=dict)
    nodes: dict[Identifier, NodeDoc] = Field(default_factory=dict)
    outputs: dict[Identifier, OutputRef] = Field(default_factory=dict)

    def to_data(self) -> dict[str, Any]:
        """The canonical JSON-compatible form: keys in document order, fields that were not given left out."""
        data: dict[str, Any] = {"format": self.format, "name": self.name}
        if self.description is not None:
            data["description"] = self.description
        data["inputs"] = {name: _input_data(spec) for name, spec in self.inputs.items()}
        data["nodes"] = {node_id: _node_data(node) for node_id, node in self.nodes.items()}
        data["outputs"] = {name: str(ref) for name, ref in self.outputs.items()}
        return data

    @classmethod
    def from_data(cls, data: Any) -> WorkflowDoc:
        """Validate a JSON-compatible mapping (raises pydantic.ValidationError; loaders turn it readable)."""
        return cls.model_validate(data)


def _input_data(spec: InputDoc) -> dict[str, Any]:
    data: dict[str, Any] = {"type": spec.type}
    if spec.has_default:
        data["default"] = spec.default
    if spec.description is not None:
        data["description"] = spec.description
    return data


def _node_data(node: NodeDoc) -> dict[str, Any]:
    data: dict[str, Any] = {"type": node.type}
    if node.in_:
        data["in"] = {port: _dump_binding(ref) for port, ref in node.in_.items()}
    if node.params:
        data["params"] = dict(node.params)
    if node.retry is not None:
        data["retry"] = node.retry.model_dump(exclude_none=True)
    if node.timeout_s is not None:
        data["timeout_s"] = node.timeout_s
    if node.resources is not None:
        data["resources"] = node.resources.model_dump(exclude_none=True)
    for key in ("cache", "convert", "description"):
        value = getattr(node, key)
        if value is not None:
            data[key] = value
    return data


def is_identifier(text: str) -> bool:
    """True when ``text`` is a valid node id, input, output or port name."""
    return bool(_ID_RE.match(text))


def workflow_json_schema() -> dict[str, Any]:
    """The published JSON Schema of the workflow document format (draft 2020-12)."""
    schema = WorkflowDoc.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://rayweave.dev/schema/workflow-1.json"
    schema["title"] = "rayweave workflow document (rayweave.workflow/1)"
    _close_identifier_maps(schema)
    return schema


def _close_identifier_maps(schema: Any) -> None:
    # pydantic describes dict[Identifier, X] with patternProperties, which lets keys that do not match the
    # pattern through; the document rejects them, so the schema says so too.
    if isinstance(schema, dict):
        patterns = schema.get("patternProperties")
        if isinstance(patterns, dict) and len(patterns) == 1:
            ((pattern, value),) = patterns.items()
            del schema["patternProperties"]
            schema["propertyNames"] = {"pattern": pattern, "maxLength": 128}
            schema["additionalProperties"] = value
        for value in schema.values():
            _close_identifier_maps(value)
    elif isinstance(schema, list):
        for item in schema:
            _close_identifier_maps(item)
