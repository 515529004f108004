"""Several hosts on one Linux machine: a Ray head and workers, each in a network namespace of its own.

The multi-host test harness (issue 19, docs/guides/multi-host-testing.md). `MultiHostCluster` builds, on this
machine and as root, with Debian's iproute2 (`ip netns`, veth pairs, a bridge):

- a bridge with an address of the root namespace on it (`gateway`, the machine the tests run on);
- one network namespace per host (`head`, `w1`, `w2`, ...), each joined to the bridge by a veth pair and given
  its own address in a /24 of 10.231.0.0/16 that no interface of this machine uses yet;
- a Ray head (`ray start --head`, no CPUs of its own, so every node task runs on a worker host) and one Ray
  worker node per worker host, each started with `ip netns exec`, token authentication on (`RAY_AUTH_MODE=token`
  and one made-up `RAY_AUTH_TOKEN` for the whole cluster);
- TCP forwarders (`forward`) in the root namespace that make services listening on 127.0.0.1 here (PostgreSQL)
  reachable from every host at `gateway:port`, as a database server on another machine would be.

A host's processes share this machine's file system and user accounts, not its network: every byte between Ray
nodes, between a driver and the GCS, and between a host and the database crosses the bridge. Killing a host
(`kill_host`) SIGKILLs every process of its namespace at once, as a machine that loses power.

`close()` removes everything it made (processes, namespaces and with them their veths, the bridge, forwarders,
scratch files), also after a failed start; `remove_stale()` removes what an earlier process that died before its
`close()` left (its pid is in every name). Nothing here runs at import; only the standard library is used.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Host", "MultiHostCluster", "forward", "remove_stale", "unavailable_reason"]

#: Every name this harness gives (namespaces, links) starts with this, followed by the creating process's pid.
PREFIX = "rwmh"
#: The head's GCS port (each host has its own network stack, so fixed ports never collide).
GCS_PORT = 6379
_SUPERNET = ipaddress.IPv4Network("10.231.0.0/16")


@dataclass(frozen=True)
class Host:
    """One host of the cluster: its name (`head`, `w1`, ...), network namespace (`netns`) and address on the bridge."""

    name: str
    netns: str
    ip: str


def unavailable_reason() -> str | None:
    """Why network namespaces cannot be made here (not root, no `ip`, no netns support), or None when they can."""
    if sys.platform != "linux":
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "network namespaces need root (CI runs as root)"
    if shutil.which("ip") is None:
        return "the `ip` command (Debian package iproute2) is not installed"
    probe = f"{PREFIX}{os.getpid()}probe"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, check=False)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "delete", probe], capture_output=True, check=False)
    return None


def remove_stale() -> list[str]:
    """Remove the namespaces and links that harness processes no longer alive left behind; their names."""
    removed: list[str] = []
    for name in _netns_names():
        owner = _owner_pid(name)
        if owner is not None and not _alive(owner):
            _kill_namespace(name)
            _ip("netns", "delete", name, check=False)
            removed.append(name)
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=False).stdout
    for line in links.splitlines():
        name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
        owner = _owner_pid(name)
        if owner is not None and not _alive(owner):
            _ip("link", "delete", name, check=False)
            removed.append(name)
    return removed


class MultiHostCluster:
    """A Ray cluster of a head and `workers` worker hosts, each in its own network namespace (module docstring).

    `worker_cpus`: the logical CPUs of each worker node (the head has none). `forwards`: ports on this machine's
    127.0.0.1 to make reachable from every host at `gateway:port` (e.g. PostgreSQL's 5432). `env`: variables for
    every process started on a host (e.g. `PYTHONPATH`). Use as a context manager, or call `start()` and
    `close()`. One at a time per process: its names are made from the process id.
    """

    def __init__(
        self,
        *,
        workers: int = 2,
        worker_cpus: int = 1,
        forwards: Sequence[int] = (),
        env: Mapping[str, str] | None = None,
        object_store_mb: int = 128,
    ) -> None:
        self.tag = f"{PREFIX}{os.getpid()}"
        self.token = secrets.token_hex(16)
        self.worker_cpus = worker_cpus
        self.object_store_mb = object_store_mb
        self.forward_ports = tuple(forwards)
        self.extra_env = dict(env or {})
        self.scratch = Path(tempfile.mkdtemp(prefix=f"{self.tag}-", dir="/tmp"))
        self.bridge = f"{self.tag}b"
        self.network = _free_subnet()
        addresses = list(self.network.hosts())
        self.gateway = str(addresses[0])
        names = ["head", *(f"w{i}" for i in range(1, workers + 1))]
        self.hosts = {
            name: Host(name, f"{self.tag}-{name}", str(addresses[9 + i])) for i, name in enumerate(names)
        }
        self._processes: list[subprocess.Popen[bytes]] = []
        self._forwarders: list[subprocess.Popen[bytes]] = []
        self._made_links: list[str] = []
        self._made_namespaces: list[str] = []

    # -- what tests use -----------------------------------------------------------------------------------

    @property
    def head(self) -> Host:
        """The head host (the GCS, the API, the drivers)."""
        return self.hosts["head"]

    @property
    def workers(self) -> list[Host]:
        """The worker hosts, in order."""
        return [host for name, host in self.hosts.items() if name != "head"]

    @property
    def address(self) -> str:
        """The head's GCS address, which drivers on any host join."""
        return f"{self.head.ip}:{GCS_PORT}"

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a process on a host: this machine's, Ray on a routable address with this
        cluster's token, the harness's `env`, then `extra`."""
        env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAYWEAVE_RAY_ADDRESS")}
        env.update(
            # 1 (Ray's default on Linux): Ray uses the host's own address, not loopback.
            RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="1",
            RAY_USAGE_STATS_ENABLED="0",
            RAY_AUTH_MODE="token",
            RAY_AUTH_TOKEN=self.token,
        )
        env.update(self.extra_env)
        env.update(extra)
        return env

    def popen(
        self, host: Host | str, argv: Sequence[str], *, env: Mapping[str, str] | None = None, log: str = ""
    ) -> subprocess.Popen[bytes]:
        """Start `argv` on `host` (in its namespace) with `env` (default `self.env()`); its output goes to
        `scratch/{log}` when `log` is given, else nowhere. Killed by `close()`."""
        ns = self._host(host).netns
        out: int | object = subprocess.DEVNULL
        handle = None
        if log:
            handle = (self.scratch / log).open("ab")
            out = handle
        try:
            process = subprocess.Popen(
                ["ip", "netns", "exec", ns, *argv],
                env=dict(env if env is not None else self.env()),
                stdin=subprocess.DEVNULL,
                stdout=out,  # type: ignore[arg-type]
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            if handle is not None:
                handle.close()
        self._processes.append(process)
        return process

    def run(
        self,
        host: Host | str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        timeout: float = 120.0,
        cwd: str | Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run `argv` on `host` to completion; its output captured as text."""
        return subprocess.run(
            ["ip", "netns", "exec", self._host(host).netns, *argv],
            env=dict(env if env is not None else self.env()),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def pids(self, host: Host | str) -> list[int]:
        """The processes running on `host` (every process in its namespace)."""
        return _namespace_pids(self._host(host).netns)

    def kill_host(self, host: Host | str) -> list[int]:
        """SIGKILL every process of `host` at once (a machine losing power); the pids killed."""
        return _kill_namespace(self._host(host).netns)

    def log(self, name: str) -> str:
        """The output of a process started with `log=name` (empty when there is none)."""
        path = self.scratch / name
        return path.read_text(errors="replace") if path.exists() else ""

    # -- lifecycle ---------------------------------------------------------------------------------------

    def start(self, timeout_s: float = 90.0) -> None:
        """Build the network, start the forwarders, the head and the workers; wait until every worker node
        has joined. On failure everything made so far is removed and a RuntimeError tells what failed."""
        try:
            self._network()
            for port in self.forward_ports:
                self._forward(port)
            self._start_ray(timeout_s)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Remove everything this cluster made; safe to call twice and after a failed start."""
        for ns in list(self._made_namespaces):
            _kill_namespace(ns)
        for process in [*self._processes, *self._forwarders]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(5)
        for ns in self._made_namespaces:
            _ip("netns", "delete", ns, check=False)  # its end of each veth pair goes with it
        for link in self._made_links:
            _ip("link", "delete", link, check=False)
        self._made_namespaces.clear()
        self._made_links.clear()
        self._processes.clear()
        self._forwarders.clear()
        shutil.rmtree(self.scratch, ignore_errors=True)

    def __enter__(self) -> MultiHostCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ---------------------------------------------------------------------------------------

    def _host(self, host: Host | str) -> Host:
        return self.hosts[host] if isinstance(host, str) else host

    def _network(self) -> None:
        prefix = self.network.prefixlen
        _ip("link", "add", self.bridge, "type", "bridge")
        self._made_links.append(self.bridge)
        _ip("addr", "add", f"{self.gateway}/{prefix}", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for index, host in enumerate(self.hosts.values()):
            _ip("netns", "add", host.netns)
            self._made_namespaces.append(host.netns)
            outside = f"{self.tag}v{index}"
            _ip("link", "add", outside, "type", "veth", "peer", "name", "eth0", "netns", host.netns)
            self._made_links.append(outside)
            _ip("link", "set", outside, "master", self.bridge, "up")
            ns = ("-n", host.netns)
            _ip(*ns, "addr", "add", f"{host.ip}/{prefix}", "dev", "eth0")
            _ip(*ns, "link", "set", "eth0", "up")
            _ip(*ns, "link", "set", "lo", "up")
            # A default route through the bridge: Ray finds a host's own address by the route to a public one
            # (no packet is sent); without any route it falls back to resolving the host name, 10 s each time.
            _ip(*ns, "route", "add", "default", "via", self.gateway)

    def _forward(self, port: int) -> None:
        listen = f"{self.gateway}:{port}"
        process = subprocess.Popen(
            [sys.executable, "-m", "cluster.multihost", "forward", listen, f"127.0.0.1:{port}"],
            cwd=str(Path(__file__).resolve().parents[1]),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=(self.scratch / f"forward-{port}.log").open("ab"),
            start_new_session=True,
        )
        self._forwarders.append(process)
        _wait(lambda: _listening(self.gateway, port), 20, f"the forwarder of port {port} to listen", process)

    def _ray_argv(self, host: Host) -> list[str]:
        ray = str(Path(sys.executable).with_name("ray"))
        argv = [
            ray, "start", "--block", f"--node-ip-address={host.ip}", "--disable-usage-stats",
            f"--object-store-memory={self.object_store_mb * 1024 * 1024}",
            # A temp dir per host, as on separate machines: the hosts share this machine's file system, and
            # two nodes starting at once in one session directory were given the same socket names there.
            # Ray's unix sockets live under it: a short path keeps them below ~107 characters.
            f"--temp-dir={self.scratch / host.name}",
        ]  # fmt: skip
        if host.name == "head":
            argv += ["--head", f"--port={GCS_PORT}", "--num-cpus=0", "--include-dashboard=false"]
        else:
            argv += [f"--address={self.address}", f"--num-cpus={self.worker_cpus}"]
        return argv

    def _start_ray(self, timeout_s: float) -> None:
        head = self.popen(self.head, self._ray_argv(self.head), log="head.log")
        _wait(lambda: _listening(self.head.ip, GCS_PORT), timeout_s, "the Ray head's GCS", head, self._tails)
        started = {h.name: self.popen(h, self._ray_argv(h), log=f"{h.name}.log") for h in self.workers}
        for name, process in started.items():
            log = f"{name}.log"
            _wait(
                functools.partial(lambda log: "Ray runtime started" in self.log(log), log),
                timeout_s,
                f"the Ray worker node on {name} to join",
                process,
                self._tails,
            )

    def _tails(self) -> str:
        """The end of each host's `ray start` output (for errors)."""
        return "\n".join(f"--- {name}:\n{self.log(name + '.log')[-2000:]}" for name in self.hosts)


def forward(listen: str, target: str) -> None:
    """Accept TCP connections at `listen` (host:port) and relay each, both ways, to `target`; runs forever.

    What makes a server that listens on 127.0.0.1 of this machine (PostgreSQL here) reachable from the hosts of
    a `MultiHostCluster`, without changing the server's configuration: the relay is as a router on the path.
    """
    host, port = listen.rsplit(":", 1)
    target_host, target_port = target.rsplit(":", 1)
    server = socket.create_server((host, int(port)), backlog=128)
    while True:
        client, _ = server.accept()
        try:
            upstream = socket.create_connection((target_host, int(target_port)), timeout=10)
        except OSError:
            client.close()
            continue
        upstream.settimeout(None)
        for src, dst in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pump, args=(src, dst), daemon=True).start()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _ip(*args: str, check: bool = True) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"`ip {' '.join(args)}` failed: {done.stderr.strip()}")


def _free_subnet() -> ipaddress.IPv4Network:
    """A /24 of 10.231.0.0/16 that no interface of this machine is in (starting at one chosen by pid)."""
    shown = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True, check=False)
    used: list[ipaddress.IPv4Network] = []
    for field in shown.stdout.split():
        with contextlib.suppress(ValueError):
            used.append(ipaddress.IPv4Interface(field).network)
    subnets = list(_SUPERNET.subnets(new_prefix=24))[1:]
    start = os.getpid() % len(subnets)
    for subnet in subnets[start:] + subnets[:start]:
        if not any(subnet.overlaps(other) for other in used):
            return subnet
    raise RuntimeError(f"every /24 of {_SUPERNET} is in use on this machine")


def _netns_names() -> list[str]:
    shown = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    return [line.split()[0] for line in shown.splitlines() if line.startswith(PREFIX)]


def _owner_pid(name: str) -> int | None:
    """The pid in a name this harness gave (`rwmh{pid}...`), or None for other names."""
    if not name.startswith(PREFIX):
        return None
    digits = ""
    for char in name[len(PREFIX) :]:
        if not char.isdigit():
            break
        digits += char
    return int(digits) if digits else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _namespace_pids(namespace: str) -> list[int]:
    shown = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True, text=True, check=False)
    return [int(pid) for pid in shown.stdout.split()]


def _kill_namespace(namespace: str) -> list[int]:
    """SIGKILL every process in `namespace` until none is left (Ray may start one meanwhile); those killed."""
    killed: list[int] = []
    for _ in range(20):
        pids = _namespace_pids(namespace)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        killed += pids
        time.sleep(0.05)
    return sorted(set(killed))


def _listening(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


def _wait(
    ready: Callable[[], bool],
    timeout_s: float,
    what: str,
    process: subprocess.Popen[bytes],
    tail: Callable[[], str] | None = None,
) -> None:
    """Wait until `ready()`; a RuntimeError (with `tail()`) if `process` exits or `timeout_s` passes first."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            status = "it exited" if process.poll() is not None else f"not within {timeout_s:.0f} s"
            raise RuntimeError(f"waiting for {what}: {status}\n{tail() if tail else ''}")
        time.sleep(0.1)


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m cluster.multihost forward LISTEN TARGET` (the harness's forwarders)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 3 or args[0] != "forward":
        raise SystemExit("usage: python -m cluster.multihost forward LISTEN_HOST:PORT TARGET_HOST:PORT")
    forward(args[1], args[2])


if __name__ == "__main__":
    main()
