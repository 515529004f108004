"""Secret references in params: accepted by the compiler for String params, resolved and kept in the node."""

from __future__ import annotations

import pyarrow as pa
import pytest

from engine.compile import compile_workflow
from engine.errors import WorkflowValidationError
from engine.secrets import Keyring, SecretsService
from engine.secrets.keys import new_master_key, write_keyring
from engine.secrets.refs import (
    REDACTED,
    KeySource,
    RunSecrets,
    SecretUnavailableError,
    find_leak,
    redact,
    secret_names,
)
from engine.store import open_store


def _doc(params: dict[str, object]) -> dict[str, object]:
    return {
        "format": "rayweave.workflow/1",
        "name": "uses-a-secret",
        "nodes": {
            "r": {"type": "builtin/http_request@1", "in": {"url": {"value": "http://x"}}, "params": params}
        },
        "outputs": {"status": "r.status"},
    }


def test_the_compiler_takes_a_secret_reference_for_a_string_param() -> None:
    plan = compile_workflow(_doc({"method": {"secret": "verb"}}))
    node = next(n for n in plan.nodes if n.id == "r")
    assert node.params["method"] == {"secret": "verb"}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"timeout_s": {"secret": "t"}}, "stands for a String, and param 'timeout_s'"),
        ({"method": {"secret": "no spaces"}}, "secret name 'no spaces' is not allowed"),
    ],
)
def test_the_compiler_refuses_a_misplaced_or_malformed_reference(
    params: dict[str, object], message: str
) -> None:
    with pytest.raises(WorkflowValidationError) as caught:
        compile_workflow(_doc(params))
    [diagnostic] = [d for d in caught.value.diagnostics if d.code == "RW109"]
    assert message in diagnostic.message and diagnostic.node == "r"


def test_run_secrets_open_in_the_worker_from_the_key_file_only(tmp_path) -> None:  # type: ignore[no-untyped-def]
    keyring = Keyring([new_master_key()], "test")
    write_keyring(tmp_path / "master.key", keyring)
    with open_store(f"sqlite:///{tmp_path / 'db.sqlite'}") as store:
        SecretsService(store, keyring).set("alice", "token", "the-token-value")
        row = store.secrets.get("alice", "token")
    from engine.secrets.service import sealed_of

    secrets = RunSecrets("alice", {"token": sealed_of(row)}, KeySource(str(tmp_path / "master.key")))
    assert "the-token-value" not in repr(secrets)
    resolved, values = secrets.resolve({"api_key": {"secret": "token"}, "n": 3})
    assert resolved == {"api_key": "the-token-value", "n": 3} and values == ["the-token-value"]
    with pytest.raises(SecretUnavailableError, match="secret 'other' does not exist for the run's owner"):
        secrets.resolve({"x": {"secret": "other"}})
    # Opened values are remembered per (owner, name, ciphertext): another owner's view of the same sealed row
    # is opened afresh, and without the key file it cannot be (nor, being bound to alice, could it with it).
    elsewhere = RunSecrets("bob", {"token": sealed_of(row)}, KeySource(str(tmp_path / "missing.key")))
    with pytest.raises(SecretUnavailableError, match="secret 'token' cannot be opened in this worker"):
        elsewhere.resolve({"x": {"secret": "token"}})


def test_redaction_and_leak_detection() -> None:
    assert secret_names({"a": {"secret": "x"}, "b": 1, "c": {"secret": "y", "extra": 1}}) == {"x"}
    assert redact("token=abcd1234 and abcd1234", ["abcd1234"]) == f"token={REDACTED} and {REDACTED}"
    assert redact("short ab", ["ab"]) == "short ab"
    assert find_leak({"out": ["x", {"k": "...abcd1234..."}]}, ["abcd1234"])
    assert find_leak(b"xxabcd1234", ["abcd1234"])
    assert find_leak(pa.table({"c": ["a", "abcd1234"]}), ["abcd1234"])
    assert not find_leak({"out": [1, 2.0, "clean"]}, ["abcd1234"])
