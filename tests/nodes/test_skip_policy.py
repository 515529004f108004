"""The SKIP sentinel, retry policies and resource requests."""

from __future__ import annotations

import copy
import json
import pickle
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nodes import SKIP, Resources, RetryPolicy, is_skip
from nodes.errors import PolicyError
from nodes.policy import Backoff
from nodes.skip import SkipType


def test_skip_is_one_object_across_pickle_copy_and_cloudpickle() -> None:
    import ray.cloudpickle as cloudpickle

    assert pickle.loads(pickle.dumps(SKIP)) is SKIP
    assert cloudpickle.loads(cloudpickle.dumps({"x": SKIP}))["x"] is SKIP  # type: ignore[no-untyped-call]
    assert copy.deepcopy([SKIP])[0] is SKIP
    assert SkipType() is SKIP
    assert is_skip(SKIP) and not is_skip(None)
    assert repr(SKIP) == "SKIP"
    assert not SKIP


def test_retry_int_means_number_of_retries() -> None:
    assert RetryPolicy.coerce(None).max_attempts == 1
    assert RetryPolicy.coerce(3).max_attempts == 4
    policy = RetryPolicy.coerce({"max_attempts": 3, "backoff": "exponential", "initial_s": 0.5})
    assert policy == RetryPolicy(max_attempts=3, backoff="exponential", initial_s=0.5)


def test_retry_delay_fixed_exponential_capped_and_jittered() -> None:
    fixed = RetryPolicy(max_attempts=5, initial_s=2.0, jitter=False)
    assert [fixed.delay(a) for a in (1, 2, 3)] == [2.0, 2.0, 2.0]
    expo = RetryPolicy(max_attempts=10, backoff="exponential", initial_s=0.5, max_s=3.0, jitter=False)
    assert [expo.delay(a) for a in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert expo.delay(5000) == 3.0
    jittered = RetryPolicy(backoff="exponential", initial_s=1.0, max_s=100.0)
    rng = random.Random(7)
    delays = [jittered.delay(3, rng) for _ in range(200)]
    assert all(2.0 <= d <= 4.0 for d in delays)
    assert len(set(delays)) > 100
    with pytest.raises(PolicyError):
        expo.delay(0)


def test_retry_on_matches_by_exception_name_and_subclass() -> None:
    # Classes are accepted and stored by name, so the policy stays JSON-serializable.
    policy = RetryPolicy(max_attempts=3, retry_on=("ConnectionError", TimeoutError))  # type: ignore[arg-type]
    assert policy.retry_on == ("ConnectionError", "builtins.TimeoutError")
    assert policy.should_retry(ConnectionRefusedError(), attempt=1)  # a subclass of ConnectionError
    assert policy.should_retry(TimeoutError(), attempt=2)
    assert not policy.should_retry(TimeoutError(), attempt=3)  # attempts exhausted
    assert not policy.should_retry(ValueError(), attempt=1)
    assert RetryPolicy(max_attempts=2).should_retry(ValueError(), attempt=1)


def test_retry_json_round_trip_and_validation() -> None:
    policy = RetryPolicy(max_attempts=3, backoff="exponential", retry_on=("OSError",))
    data = json.loads(json.dumps(policy.to_json()))
    assert RetryPolicy.from_json(data) == policy
    with pytest.raises(PolicyError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(PolicyError, match="backoff"):
        RetryPolicy(backoff="linear")  # type: ignore[arg-type]
    with pytest.raises(PolicyError, match="unknown retry policy keys"):
        RetryPolicy.from_json({"attempts": 3})
    with pytest.raises(PolicyError):
        RetryPolicy.coerce(-1)


def test_resources_to_ray_options_and_json() -> None:
    assert Resources().to_ray_options() == {}
    res = Resources(num_cpus=2, num_gpus=0.5, memory=1 << 30, custom={"a100": 1})
    assert res.to_ray_options() == {
        "num_cpus": 2,
        "num_gpus": 0.5,
        "memory": 1 << 30,
        "resources": {"a100": 1},
    }
    assert Resources.from_json(json.loads(json.dumps(res.to_json()))) == res
    assert hash(res) == hash(Resources(num_cpus=2, num_gpus=0.5, memory=1 << 30, custom={"a100": 1}))
    assert res.merged({"num_cpus": 4}).num_cpus == 4
    with pytest.raises(TypeError):
        res.custom["b"] = 1  # type: ignore[index]
    with pytest.raises(PolicyError, match="num_cpus"):
        Resources(num_cpus=-1)
    with pytest.raises(PolicyError, match="unknown resources keys"):
        Resources.from_json({"cpus": 1})


@given(
    attempt=st.integers(min_value=1, max_value=10_000),
    initial=st.floats(min_value=0, max_value=100),
    extra=st.floats(min_value=0, max_value=100),
    backoff=st.sampled_from(["fixed", "exponential"]),
    jitter=st.booleans(),
)
def test_delay_is_never_negative_nor_above_the_cap(
    attempt: int, initial: float, extra: float, backoff: Backoff, jitter: bool
) -> None:
    policy = RetryPolicy(
        max_attempts=2, backoff=backoff, initial_s=initial, max_s=initial + extra, jitter=jitter
    )
    delay = policy.delay(attempt, random.Random(attempt))
    assert 0.0 <= delay <= policy.max_s
    if not jitter:
        assert delay >= min(initial, policy.max_s)


def test_resources_survive_plain_pickle() -> None:
    import pickle

    from nodes import Resources

    resources = Resources(num_cpus=2, custom={"accelerator_a100": 1})
    assert pickle.loads(pickle.dumps(resources)) == resources
