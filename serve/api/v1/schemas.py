"""Request and response models of API version 1 (frozen once released: only compatible additions).

Requests forbid unknown fields, so a typo is a 422 naming the field instead of a silently ignored value; their
booleans are strict (`"yes"` is not `true`), their timestamps need a time zone, and every field passes the
input limits of `serve.limits` (JSON nesting depth, no NUL or lone surrogate in text, finite numbers) before
anything is stored.
Workflow documents travel as plain JSON objects (`rayweave.workflow/1`); the compiler validates them and
answers with diagnostics, which carry more precise locations than a schema error could.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError

from engine.durable.outputs import OmittedReason
from nodes.states import EventType, NodeStatus, RunStatus
from serve.limits import JsonLimitError, check_json

EXAMPLE_WORKFLOW: dict[str, Any] = {
    "format": "rayweave.workflow/1",
    "name": "add-two",
    "inputs": {"a": {"type": "Int"}, "b": {"type": "Int"}},
    "nodes": {"sum": {"type": "builtin/add@1", "in": {"a": "$inputs.a", "b": "$inputs.b"}}},
    "outputs": {"total": "sum"},
}

WorkflowDocument = dict[str, Any]

#: Integers in requests stay within a signed 64-bit column (larger values are 422s, not database errors).
MAX_INT = 2**63 - 1


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise PydanticCustomError(
            "datetime_range",
            "the date-time is out of range once converted to UTC; send one between years 1 and 9999",
        ) from None


_DATE_TIME_START = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _date_time_text(value: Any) -> Any:
    # Lax pydantic would read a number (or "0.5") as seconds since 1970: a request says what it means, in RFC 3339.
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or _DATE_TIME_START.match(value) is None:
        raise PydanticCustomError(
            "datetime_type",
            "must be an RFC 3339 date-time string with a time zone, e.g. 2030-01-01T00:00:00Z",
        )
    return value


#: A request date-time: an RFC 3339 string that names its time zone (a naive one is ambiguous: 422), used in UTC.
UtcDatetime = Annotated[AwareDatetime, BeforeValidator(_date_time_text), AfterValidator(_in_utc)]


def _query_bool(value: Any) -> Any:
    # Lax pydantic would also read yes, on, 1, t, y (and their opposites) as booleans: a query says true or false.
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise PydanticCustomError(
        "query_bool", "must be true or false (other words such as yes, on or 1 are refused)"
    )


#: A boolean query parameter: exactly `true` or `false` (anything else is a 422 naming the parameter).
QueryBool = Annotated[bool, BeforeValidator(_query_bool)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _within_limits(cls, value: Any, info: ValidationInfo) -> Any:
        # Every field of every request, so a new field cannot forget it: a value that breaks a limit would
        # fail later in the compiler, the database or the response, possibly after being stored.
        try:
            check_json(value, str(info.field_name))
        except JsonLimitError as exc:
            raise PydanticCustomError("json_limit", "{message}", {"message": str(exc)}) from None
        return value


class RequestModel(_Request):
    """The base of every request body of the API, wherever its route lives: unknown fields are refused and every
    field passes the input limits of `serve.limits` (no NUL or lone surrogate in text, bounded nesting)."""


class _Response(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Problem(BaseModel):
    """An RFC 9457 problem: every error of the API has this shape (`application/problem+json`)."""

    type: str = Field(description="A URI naming the kind of problem; stable, clients may match on it.")
    title: str = Field(description="Short summary of the kind of problem.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong in this request and what to do about it.")
    instance: str = Field(default="", description="The request path.")
    request_id: str = Field(
        default="", description="The id of the request (also in the X-Request-Id header)."
    )
    diagnostics: list[dict[str, Any]] | None = Field(
        default=None, description="For invalid workflows: the validator's diagnostics."
    )
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="For requests that do not match the schema: one entry per bad field."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "type": "https://rayweave.dev/problems/not-found",
                "title": "Not found",
                "status": 404,
                "detail": "workflow 'abc' does not exist (or was deleted); list workflows to find it",
                "instance": "/v1/workflows/abc",
                "request_id": "4f1c2a...",
            }
        }
    )


class Health(_Response):
    """Liveness."""

    status: Literal["ok"] = "ok"
    version: str = Field(description="The rayweave version of this server.")


class Readiness(_Response):
    """Readiness: whether the database and Ray are reachable."""

    status: Literal["ready", "not-ready"]
    database: bool
    ray: bool
    detail: str = ""


class TypeCheckRequest(_Request):
    """Is a value of type `source` accepted by a port of type `target`?"""

    source: str = Field(description="Type text, e.g. `List[Int]`.", examples=["Int"])
    target: str = Field(description="Type text, e.g. `List[Float] | Null`.", examples=["Float"])


class TypeCheckResponse(_Response):
    """The answer: `assignable` when the ports connect without a conversion node."""

    source: str
    target: str
    assignable: bool
    subtype: bool = Field(description="True when `source` is a subtype of `target` (no coercion at all).")
    reason: str
    coercion: dict[str, Any] | None = Field(
        default=None,
        description="The coercion (kind identity/implicit/explicit, cost, steps), if one exists.",
    )


class NodeList(_Response):
    """The node catalog."""

    nodes: list[dict[str, Any]] = Field(description="Node specs: ports with types, params, docs.")


class Diagnostic(_Response):
    """One problem found in a workflow, located by node, port and/or field."""

    code: str
    severity: Literal["error", "warning", "note"]
    title: str = ""
    message: str
    node: str | None = None
    port: str | None = None
    field: str | None = None
    hint: str | None = None
    line: int | None = None
    column: int | None = None


class ValidateRequest(_Request):
    """A workflow document to validate."""

    workflow: WorkflowDocument = Field(
        description="A `rayweave.workflow/1` document.", examples=[EXAMPLE_WORKFLOW]
    )


class ValidateResponse(_Response):
    """The diagnostics; `valid` is true when none of them is an error."""

    valid: bool
    diagnostics: list[Diagnostic]


class WorkflowCreate(_Request):
    """A new workflow (it becomes version 1)."""

    workflow: WorkflowDocument = Field(
        description="A `rayweave.workflow/1` document.", examples=[EXAMPLE_WORKFLOW]
    )
    name: str | None = Field(default=None, max_length=200, description="Defaults to the document's `name`.")
    message: str = Field(default="", max_length=2000, description="A note stored with the version.")


class WorkflowUpdate(_Request):
    """A new version of a workflow; send `If-Match: <current version>`."""

    workflow: WorkflowDocument = Field(
        description="A `rayweave.workflow/1` document.", examples=[EXAMPLE_WORKFLOW]
    )
    message: str = Field(default="", max_length=2000)


class WorkflowSummary(_Response):
    """A stored workflow without its document."""

    id: str
    name: str
    owner: str
    latest_version: int
    created_at: datetime
    updated_at: datetime


class WorkflowList(_Response):
    """A page of workflows, most recently updated first."""

    items: list[WorkflowSummary]
    next_offset: int | None = Field(default=None, description="Pass as `offset` for the next page.")


class WorkflowVersionOut(_Response):
    """One immutable version of a workflow, with its document."""

    workflow_id: str
    name: str
    version: int
    content_hash: str
    author: str
    message: str
    created_at: datetime
    workflow: WorkflowDocument


class VersionSummary(_Response):
    """One version in a workflow's history."""

    version: int
    content_hash: str
    author: str
    message: str
    created_at: datetime


class VersionList(_Response):
    """Every version of a workflow, newest first."""

    workflow_id: str
    items: list[VersionSummary]


class RunCreate(_Request):
    """Start a run: of a stored workflow (`workflow_id`, optional `version`) or of an inline `workflow`."""

    workflow_id: str | None = Field(default=None, examples=["0f3c..."])
    version: StrictInt | None = Field(
        default=None, ge=1, le=MAX_INT, description="Default: the latest version."
    )
    workflow: WorkflowDocument | None = Field(default=None, description="An inline document (not stored).")
    inputs: dict[str, Any] = Field(default_factory=dict, examples=[{"a": 1, "b": 2}])
    cache: StrictBool = Field(
        default=True,
        description="Take the results of nodes computed before (same code version, parameters and inputs) "
        "from the result cache, and add this run's. False runs every node and leaves the cache alone.",
    )
    targets: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description='"Run to here": run only these nodes and their ancestors (upstream results come from the '
        "cache where they can). The run's outputs are every output port of each target, named `node__port`. "
        "A node the workflow does not have is a 422 (RW107) naming it.",
        examples=[["sum"]],
    )


class RunAccepted(_Response):
    """The run was accepted (or, with a repeated `Idempotency-Key`, found)."""

    id: str
    status: RunStatus
    created: bool = Field(description="False when the Idempotency-Key matched an earlier request.")
    links: dict[str, str]
    deferred: bool = Field(
        default=False,
        description="True when the run is recorded but the engine could not start it now (e.g. Ray is "
        "unreachable): it stays queued and the server's recovery sweep starts it once the engine is back. "
        "Do not submit it again; that would make a second run.",
    )


class RunSummary(_Response):
    """A run without its node details."""

    id: str
    workflow_id: str | None
    workflow_version: int | None
    status: RunStatus
    owner: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class RunList(_Response):
    """A page of runs, newest first."""

    items: list[RunSummary]
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` for the next page.")


class NodeState(_Response):
    """The state of one node of a run (its latest attempt)."""

    node: str
    type: str
    status: NodeStatus
    attempts: int
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_s: float | None = None
    error: dict[str, Any] | None = None


class RunDetail(RunSummary):
    """A run with every node's state, timings, attempts and errors."""

    inputs: dict[str, Any]
    error: dict[str, Any] | None
    last_seq: int = Field(description="Sequence number of the newest event (resume event streams after it).")
    nodes: list[NodeState]
    plugin_versions: dict[str, str] | None = Field(
        default=None,
        description="The exact version that served each node type of the run, by node type id: a plugin's "
        "`name@version`, `builtin@<rayweave version>` for built-in nodes (null for runs that did not record it).",
    )
    targets: list[str] | None = Field(
        default=None,
        description='The nodes a "run to here" or a re-run ran to (null for a run of the whole workflow): '
        "only they and their ancestors belong to the run.",
    )
    rerun_of: RerunOf | None = Field(
        default=None, description="For a re-run of a node: the run whose recorded inputs it used."
    )


class RerunOf(_Response):
    """The run a re-run took its node's inputs from, and the node it re-ran."""

    run: str
    node: str


class NodeOutputPort(_Response):
    """One output port of a node in a run."""

    port: str
    type: str = Field(description="The port's declared type.")
    table: bool = Field(description="True for a table: page through it with `GET .../outputs/{port}`.")
    preview: str | None = Field(description="The path of its paged preview (tables only).")
    value: str | None = Field(
        default=None,
        description="The path of its value as JSON, cut to a size (`GET .../outputs/{port}/value`); null for a "
        "table, which is paged through `preview` instead.",
    )


class NodeInputPort(_Response):
    """One input port of a node in a run, and where its value came from."""

    port: str
    type: str | None = Field(
        default=None,
        description="The port's type as the compiler solved it; null when the workflow no longer compiles.",
    )
    source: str = Field(
        description="Where the value came from: `node.port` (or `node` alone) and `$inputs.name` as the workflow "
        "document writes them, `constant` for a constant, or a list of these for a list port (`[a.out, constant]`)."
    )
    from_nodes: list[str] = Field(
        default_factory=list,
        description="The upstream nodes the value came from (none for inputs and constants).",
    )
    table: bool = Field(default=False, description="True when the value is a table from an upstream node.")
    preview: str | None = Field(
        default=None,
        description="For a table from an upstream node: the path of that output's paged preview.",
    )
    value: str = Field(
        description="The path of its value as JSON, cut to a size (`GET .../inputs/{port}/value`)."
    )


class RayTask(_Response):
    """The Ray task that ran a node."""

    name: str = Field(description="The task name the executor gave it (`<workflow>/<node>:<type>`).")
    dashboard_url: str | None = Field(
        description="The Ray dashboard's list of tasks with this name (its state API: each attempt's task id, "
        "state, node and worker); null when the server knows no dashboard (setting `ray_dashboard_url`)."
    )
    host: str | None = Field(
        default=None,
        description="The address of the Ray node (host) the node's last finished attempt ran on, as its final "
        "event (`node.succeeded`/`node.failed`) recorded it; null before it finished, or when not recorded.",
    )
    ray_node: str | None = Field(
        default=None, description="The id of that Ray node (hex), from the same event; null likewise."
    )


class RunNodeDetail(_Response):
    """One node of a run, for an inspector: its state, output ports and the Ray task that ran it."""

    run: str
    node: str
    type: str
    status: NodeStatus
    attempts: int
    executor: str = Field(description="Where this server runs nodes: `ray`, or `local` (in-process).")
    ray_task: RayTask | None = Field(
        description="Null when nodes do not run on Ray here, or the run's workflow no longer compiles."
    )
    outputs: list[NodeOutputPort]
    inputs: list[NodeInputPort] = Field(
        default_factory=list,
        description="Its input ports in the order the workflow binds them, with their sources.",
    )
    merged_into: str | None = Field(
        default=None,
        description="The node this one was merged into: the compiler runs a node identical to an earlier one "
        "(same type, inputs, params and options) once for both, so its state, attempts, task and outputs "
        "are that node's (the run's `run.started` event lists the merged nodes); null for a node that ran "
        "itself.",
    )


class NodeValue(_Response):
    """A value a node gave (an output) or received (an input) in a run, as JSON cut to `limit` bytes."""

    run: str
    node: str
    port: str
    direction: str = Field(description="`output` or `input`.")
    kind: str = Field(description="The Python type of the value (`int`, `list`, `dict`, `ndarray`, ...).")
    bytes: int = Field(description="The size of the whole value written as compact JSON.")
    truncated: bool = Field(
        description="True when `bytes` is more than `limit`: `value` is null, `text` is cut."
    )
    value: Any = Field(
        default=None, description="The value as JSON when it fits in `limit` bytes, else null."
    )
    text: str = Field(description="The value as indented JSON text, cut to `limit` bytes when it is bigger.")
    limit: int = Field(description="The most bytes of JSON this answer carries (query `limit`).")


class TableColumn(_Response):
    """A column of a table output: its name and Arrow type."""

    name: str
    type: str = Field(examples=["int64", "string", "timestamp[us]"])


class TablePage(_Response):
    """Rows `offset` to `offset + len(rows)` of a node's table output, each row a list in column order."""

    run: str
    node: str
    port: str
    offset: int
    limit: int
    total_rows: int
    columns: list[TableColumn]
    rows: list[list[Any]] = Field(
        description="JSON values: timestamps and dates as ISO text, bytes as base64, decimals as text."
    )
    next_offset: int | None = Field(description="The offset of the next page; null on the last page.")


class OmittedOutput(_Response):
    """An output of a succeeded run that this answer does not carry, and how to get it."""

    name: str = Field(description="The workflow output's name.")
    bytes: int | None = Field(
        description="The size of its JSON; null when it was not read (far beyond the cap, or unreadable)."
    )
    reason: OmittedReason = Field(
        description="`too_large`: it does not fit in what is left of the server's cap on the outputs one "
        "answer sends (ServeOptions.max_output_bytes, 32 MiB by default); `unavailable`: its stored value "
        "cannot be read."
    )
    message: str = Field(description="What happened and how to get the output.")


class RunOutputs(_Response):
    """The outputs of a run (empty until it succeeds). An output whose node was skipped (its branch was not
    taken) has no value: it is not in `outputs` and is listed in `skipped_outputs`. An output of a succeeded run
    that this answer cannot carry (beyond the server's size cap) is not in `outputs` and is listed in
    `omitted_outputs`: none is ever silently absent."""

    id: str
    status: RunStatus
    outputs: dict[str, Any]
    skipped_outputs: list[str] = Field(
        default_factory=list,
        description="Names of the workflow outputs whose node was skipped; they are absent from `outputs`.",
    )
    omitted_outputs: list[OmittedOutput] = Field(
        default_factory=list,
        description="Outputs of the succeeded run that are absent from `outputs` because the answer cannot "
        "carry them (too large, or unreadable), each with its size, the reason and how to get it.",
    )


#: The event types of v1's run events: `anomaly.detected` (recorded after a run's final event) is not one of
#: them (v1 is frozen; a client may not meet a type it does not know): `/v1/analytics/anomalies` lists those.
V1_EVENT_TYPES: dict[str, Any] = {
    "type": "string",
    "title": "EventType",
    "description": 'The closed set of run event types (DESIGN.md, "Execution").',
    "enum": [t.value for t in EventType if t != EventType.ANOMALY_DETECTED],
}


class RunEvent(_Response):
    """One event of a run (`run.*`, `node.*`), numbered from 1 per run: one WebSocket message, or the `data` of
    one Server-Sent Event, of `/v1/runs/{id}/events` (the JSON form of the engine's `Event`)."""

    run_id: str
    seq: int = Field(description="1, 2, 3, ... per run without gaps; streams resume after the last seen.")
    type: Annotated[EventType, WithJsonSchema(V1_EVENT_TYPES)]
    node: str | None = Field(description="The node of a `node.*` event; null for a `run.*` event.")
    attempt: int | None = Field(description="The node's attempt (from 1), also in `payload`; or null.")
    time: float = Field(description="Seconds since the Unix epoch (UTC), to the microsecond.")
    payload: dict[str, Any] = Field(description="What the event reports (`error`, `message`, ...).")


class PluginOut(_Response):
    """An installed plugin version."""

    name: str
    version: str
    enabled: bool
    installed_at: datetime
    manifest: dict[str, Any]


class PluginList(_Response):
    """Installed plugin versions."""

    items: list[PluginOut]


class PluginInstall(_Request):
    """Install a plugin from a directory or archive on the server's file system."""

    source: str = Field(description="Path of a plugin directory or archive, as the server sees it.")
    replace: StrictBool = Field(default=False, description="Reinstall a version that is already installed.")


#: The longest key lifetime `expires_in_s` may ask for (100 years), and the longest rotation grace (30 days).
KEY_LIFETIME_MAX_S = 100 * 365 * 86_400
KEY_GRACE_MAX_S = 30 * 86_400


class KeyCreate(_Request):
    """A new API key. Its secret is returned once, in the response to this request."""

    name: str = Field(default="", max_length=200, examples=["ci"])
    scopes: list[str] = Field(default_factory=list, examples=[["workflows:read", "runs:write"]])
    expires_at: UtcDatetime | None = Field(
        default=None,
        description="When the key stops working, with a time zone (e.g. `2030-01-01T00:00:00Z`); "
        "a date-time without one is refused. Give this or `expires_in_s`, not both.",
    )
    expires_in_s: int | None = Field(
        default=None,
        gt=0,
        le=KEY_LIFETIME_MAX_S,
        description="The key stops working this many seconds after its creation (e.g. 2592000 for 30 days).",
    )
    username: str | None = Field(
        default=None, max_length=200, description="Admin only: create the key for this user (created if new)."
    )


class KeyOut(_Response):
    """An API key without its secret."""

    id: str
    name: str
    prefix: str
    user_id: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class KeyCreated(KeyOut):
    """The created key; `key` is the secret, shown only now."""

    key: str = Field(description="The secret API key; store it now, it cannot be shown again.")


class KeyRotate(_Request):
    """A rotation: a new secret for the same user, name and scopes; the old key works `grace_s` more seconds."""

    grace_s: float = Field(
        default=0.0,
        ge=0,
        le=KEY_GRACE_MAX_S,
        description="How long the old key keeps working, in seconds (0, the default: it is revoked at once).",
    )
    expires_at: UtcDatetime | None = Field(
        default=None,
        description="When the new key stops working (default: the old key's lifetime, from now).",
    )
    expires_in_s: int | None = Field(
        default=None, gt=0, le=KEY_LIFETIME_MAX_S, description="The new key's lifetime in seconds."
    )


class KeyRotated(KeyCreated):
    """The new key (its secret `key` is shown only now) and the old one, revoked at `rotated.revoked_at`."""

    rotated: KeyOut = Field(description="The old key; it stops working at its `revoked_at`.")


class KeyList(_Response):
    """API keys (never secrets)."""

    items: list[KeyOut]


class AuditEntryOut(_Response):
    """One audit log entry."""

    id: int
    at: datetime
    actor: str
    action: str
    resource_type: str
    resource_id: str
    outcome: str
    details: dict[str, Any]


class AuditList(_Response):
    """Audit entries, newest first."""

    items: list[AuditEntryOut]
    next_before_id: int | None = None


#: Documented error responses shared by the protected routes.
AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Missing, malformed, unknown, expired or revoked API key."},
    403: {"model": Problem, "description": "The API key lacks the scope."},
    429: {"model": Problem, "description": "Rate limit exceeded; see Retry-After."},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "No such resource."}}
INVALID: dict[int | str, dict[str, Any]] = {
    422: {"model": Problem, "description": "Invalid request or workflow (with diagnostics)."}
}


#: Secret names: a letter, then letters, digits, `_`, `-`, `.` (`engine.secrets.NAME_PATTERN`).
SecretName = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$")]


class SecretCreate(_Request):
    """A new secret: its name, value and an optional description. The value is never shown again."""

    name: SecretName
    value: str = Field(min_length=1, max_length=65536, description="The value; sealed at rest, never listed.")
    description: str = Field(default="", max_length=1000)


class SecretUpdate(_Request):
    """A new value of a secret (a new version), and optionally a new description."""

    value: str = Field(min_length=1, max_length=65536, description="The new value; never shown again.")
    description: str | None = Field(default=None, max_length=1000)


class SecretOut(_Response):
    """What may be shown of a secret: everything but its value."""

    owner: str
    name: str
    description: str
    version: int
    key_id: str = Field(description="Fingerprint of the master key its data key is wrapped under.")
    created_at: datetime
    updated_at: datetime
    created_by: str
    updated_by: str


class SecretList(_Response):
    """Secrets (names and metadata only)."""

    items: list[SecretOut]
