"""The coordinator's CPU priority helper and the cache of serialized runtime environments."""

from __future__ import annotations

import os
import threading

from engine.execution.priority import SerializedEnvs, may_raise_priority, take_driver_priority


def test_take_driver_priority_sets_every_thread_where_permitted() -> None:
    # Runs in a child process: lowering niceness must not leak into the test session.
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.nice(5)
            ready = threading.Event()
            done = threading.Event()
            seen: list[int] = []

            def worker() -> None:
                ready.set()
                done.wait(5)
                seen.append(os.getpriority(os.PRIO_PROCESS, 0))

            thread = threading.Thread(target=worker)
            thread.start()
            ready.wait(5)
            ok = take_driver_priority()
            done.set()
            thread.join(5)
            os.write(write, f"{int(ok)} {os.getpriority(os.PRIO_PROCESS, 0)} {seen[0]}".encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        ok_flag, main_nice, thread_nice = (int(x) for x in pipe.read().split())
    os.waitpid(pid, 0)
    if may_raise_priority():  # the other thread too: Linux keeps a niceness per thread
        assert (ok_flag, main_nice, thread_nice) == (1, 0, 0)
    else:
        assert (ok_flag, main_nice, thread_nice) == (0, 5, 5)  # not permitted: nothing changes, no error


def test_serialized_envs_are_computed_once_per_distinct_env() -> None:
    envs = SerializedEnvs()
    env = {"env_vars": {"A": "1"}}
    first = envs.get(env)
    assert first is not None and "env_vars" in first
    assert envs.get({"env_vars": {"A": "1"}}) is first
    assert envs.get({"env_vars": {"A": "2"}}) != first
