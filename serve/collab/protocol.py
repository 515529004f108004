"""The y-websocket protocol's messages as this server reads them (y-protocols: sync, awareness, auth).

A message is `varuint type` then its body: sync (0) carries `varuint step` (0 state vector, 1 the updates the
other side lacks, 2 an update) and a length-prefixed payload; awareness (1) a length-prefixed awareness update;
auth (2) `varuint 0` and a reason string when permission is denied. `pycrdt` encodes and applies them; this
module only classifies what a client sent and writes the refusal a y-websocket client understands.
"""

from __future__ import annotations

from enum import Enum

from pycrdt import Decoder, YMessageType, YSyncMessageType, write_var_uint

#: y-protocols' auth message type and its "permission denied" sub-type (y-websocket logs the reason).
AUTH_MESSAGE = 2
PERMISSION_DENIED = 0
#: An update that changes nothing (what a client with nothing new answers to the server's state vector).
EMPTY_UPDATE = b"\x00\x00"


class Kind(Enum):
    """What a client's message asks of the shared document."""

    READ = "read"  # sync step 1: "send me what I lack"
    WRITE = "write"  # sync step 2 or update with changes
    NOOP = "noop"  # an empty update
    PRESENCE = "presence"  # awareness (cursors, selections, who is here)
    OTHER = "other"  # query-awareness, auth and unknown types: ignored by the room
    MALFORMED = "malformed"


def classify(message: bytes) -> Kind:
    """What kind of message `message` is; MALFORMED when it cannot be read as one."""
    if not message:
        return Kind.MALFORMED
    try:
        decoder = Decoder(message)
        kind = decoder.read_var_uint()
        if kind == YMessageType.AWARENESS:
            return Kind.PRESENCE
        if kind != YMessageType.SYNC:
            return Kind.OTHER
        step = decoder.read_var_uint()
        payload = decoder.read_message()
    except Exception:
        return Kind.MALFORMED
    if payload is None:
        return Kind.MALFORMED
    if step == YSyncMessageType.SYNC_STEP1:
        return Kind.READ
    if step in (YSyncMessageType.SYNC_STEP2, YSyncMessageType.SYNC_UPDATE):
        return Kind.NOOP if payload == EMPTY_UPDATE else Kind.WRITE
    return Kind.MALFORMED


def permission_denied(reason: str) -> bytes:
    """The auth message telling a y-websocket client that the server refused what it sent, and why."""
    text = reason.encode("utf-8")
    # The length is in bytes (lib0's writeVarString); pycrdt's Encoder.write_var_string counts characters.
    return write_var_uint(AUTH_MESSAGE) + write_var_uint(PERMISSION_DENIED) + write_var_uint(len(text)) + text


def read_permission_denied(message: bytes) -> str | None:
    """The reason of a permission-denied message, or None when `message` is not one (for clients and tests)."""
    try:
        decoder = Decoder(message)
        if decoder.read_var_uint() != AUTH_MESSAGE or decoder.read_var_uint() != PERMISSION_DENIED:
            return None
        return decoder.read_var_string()
    except Exception:
        return None


def awareness_states(message: bytes) -> dict[int, tuple[int, str | None]]:
    """The clients an awareness message speaks for: client id -> (clock, JSON state, None when removed);
    empty when `message` is not a readable awareness message."""
    try:
        decoder = Decoder(message)
        if decoder.read_var_uint() != YMessageType.AWARENESS:
            return {}
        update = decoder.read_message()
        if update is None:
            return {}
        decoder = Decoder(update)
        states: dict[int, tuple[int, str | None]] = {}
        for _ in range(decoder.read_var_uint()):
            client_id = decoder.read_var_uint()
            clock = decoder.read_var_uint()
            state = decoder.read_var_string()
            states[client_id] = (clock, None if state in ("", "null") else state)
        return states
    except Exception:
        return {}


def awareness_removal(clocks: dict[int, int]) -> bytes:
    """An awareness message removing the given clients (client id -> the clock to send): what y-websocket's
    own server sends when a connection closes, so that nobody keeps showing a client that went away."""
    update = write_var_uint(len(clocks))
    for client_id, clock in clocks.items():
        update += write_var_uint(client_id) + write_var_uint(clock) + write_var_uint(4) + b"null"
    return write_var_uint(YMessageType.AWARENESS) + write_var_uint(len(update)) + update
