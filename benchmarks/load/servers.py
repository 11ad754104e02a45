"""The processes under test: our server, the two naive peers, a cluster hook, the simulator.

Everything binds 127.0.0.1 on free ports, and every process started here is
stopped by the context manager that started it (SIGTERM, then SIGKILL).

Kinds: ``ours`` (``groundstation serve --open``), ``ours-nodelay`` /
``ours-gcfreeze`` (ours with an outside patch, ``serve_patched``), ``naive``
(``naive_ws``: our decoder + ``websockets.broadcast``), ``naive-node``
(``naive_ws_node/server.js``: node ``ws``, fed by ``feeder`` = our decoder over
a pipe), ``cluster`` (1 ingest + 2 edges over Redis, if ``serve`` has ``--role``),
``cluster4`` (1 ingest + 4 edges; any ``clusterN``); ``ours-record`` /
``cluster-record`` / ``cluster4-record``: the same, recording HDF5 (the ingest node)
into a temporary directory removed afterwards.

Server tree: by default the servers run from this working tree. Other people
edit it while benchmarks run, so ``--server-tree HEAD`` (any git revision, or a
directory) runs them from a snapshot (``git archive``) instead: the figures
then belong to one commit. The benchmark code itself always comes from here.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .common import HOST, ROOT, child_env, raise_fd_limit, stop_proc

NODE_PEER = ROOT / "benchmarks" / "load" / "naive_ws_node"
KINDS = ["ours", "ours-record", "ours-nodelay", "ours-gcfreeze", "naive", "naive-node", "cluster", "cluster-record",
         "cluster4", "cluster4-record"]
TREE_ENV = "GS_BENCH_SERVER_TREE"
SERVER_PACKAGES = ["groundstation", "telemetry_formats", "recorder", "web"]  # what a snapshot holds


def server_tree() -> Path:
    """Where the servers' code (groundstation, telemetry_formats, recorder) comes from."""
    t = os.environ.get(TREE_ENV)
    return Path(t) if t else ROOT


def server_env() -> dict:
    """``child_env()`` with the server tree first on the path (the processes also run in it: ``-m`` puts cwd first)."""
    env = child_env()
    tree = server_tree()
    if tree != ROOT:
        env["PYTHONPATH"] = f"{tree}{os.pathsep}{env['PYTHONPATH']}"
        env[TREE_ENV] = str(tree)
    return env


def snapshot(rev: str = "HEAD") -> Path:
    """The server packages of git revision ``rev``, extracted once under /tmp (``git archive``; the repository
    is not touched). Not ``benchmarks/``: the harness and the peers always come from the working tree."""
    sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", rev], capture_output=True, text=True,
                         check=True, timeout=30).stdout.strip()
    dest = Path(tempfile.gettempdir()) / f"gs-bench-server-{sha}"
    if not (dest / "groundstation").is_dir():
        tmp = Path(tempfile.mkdtemp(prefix=f"gs-bench-server-{sha}-"))
        arc = subprocess.run(["git", "-C", str(ROOT), "archive", sha, *SERVER_PACKAGES], capture_output=True,
                             check=True, timeout=60)
        subprocess.run(["tar", "-x", "-C", str(tmp)], input=arc.stdout, check=True, timeout=60)
        try:
            tmp.rename(dest)
        except OSError:  # another run made it first
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def add_tree_arg(p) -> None:
    p.add_argument("--server-tree", help="run the servers from a git revision (e.g. HEAD: a snapshot of the last "
                   "commit) or a directory; default: this working tree")


def prepare(args) -> dict:
    """Before a run: the server tree (``--server-tree``) and the open-files limit; returns what to record."""
    raise_fd_limit()
    return apply_tree_arg(args)


def apply_tree_arg(args) -> dict:
    """Point the servers at ``--server-tree``; returns what to record with the figures."""
    if not getattr(args, "server_tree", None):
        return {"server_tree": "working tree"}
    tree = Path(args.server_tree) if os.path.isdir(args.server_tree) else snapshot(args.server_tree)
    os.environ[TREE_ENV] = str(tree)
    return {"server_tree": str(tree)}


@dataclass
class ServerProc:
    kind: str
    proc: subprocess.Popen
    udp_port: int
    http_port: int
    log_path: str
    edges: list["ServerProc"] = field(default_factory=list)  # cluster: the edge nodes

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.http_port}/ws/telemetry"

    @property
    def ws_urls(self) -> list[str]:
        """Where consoles connect: this server, or a cluster's edges (consoles spread over them)."""
        return [e.ws_url for e in self.edges] or [self.ws_url]

    def pids(self) -> dict[str, int]:
        """Every process doing the server's work (node peer: + its feeder; cluster: + edges)."""
        out = {"server": self.pid}
        if self.kind == "naive-node":
            out["feeder"] = int(self.health()["feeder_pid"])
        for i, e in enumerate(self.edges):
            out[f"edge{i}"] = e.pid
        return out

    def health(self) -> dict:
        with urllib.request.urlopen(f"http://{HOST}:{self.http_port}/healthz", timeout=5) as r:
            return json.loads(r.read())

    def wait_configured(self, timeout: float = 10.0) -> dict:
        """Wait until the server (and a cluster's edges) has read the TMATS (its catalog is known)."""
        deadline = time.monotonic() + timeout
        while True:
            h = self.health()
            if h.get("configured") and all(_edge_ready(e.health()) for e in self.edges):
                return h
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.kind} server not configured after {timeout} s: {h}")
            time.sleep(0.1)

    def log_tail(self, n: int = 2000) -> str:
        try:
            return Path(self.log_path).read_text()[-n:]
        except OSError:
            return ""


def _edge_ready(h: dict) -> bool:
    """An edge node has no ``configured``: it is ready once the ingest node's state reached it (link OK)."""
    return bool(h.get("configured")) or (h.get("link") or {}).get("state") == "OK"


_UDP = re.compile(r"UDP [\d.]+:(\d+)")
_WS = re.compile(r"WebSocket ws://[\d.]+:(\d+)/")


def ensure_node_peer() -> str:
    """``npm ci`` the node peer once (``benchmarks/load/setup.sh``); returns the node executable."""
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not installed: the naive-node peer cannot run")
    if not (NODE_PEER / "node_modules" / "ws").is_dir():
        subprocess.run(["bash", str(ROOT / "benchmarks" / "load" / "setup.sh")], check=True, timeout=300)
    return node


def _command(kind: str, env: dict, extra: tuple[str, ...], open_mode: bool = True) -> list[str]:
    """The command line of one server of ``kind`` (``env`` gets the patch selection for ``ours-*``).
    ``open_mode=False``: ours asks for tokens (signed with ``child_env()``'s ``GROUNDSTATION_SECRET``)."""
    if kind.startswith("ours"):
        module = "groundstation.cli"
        if kind != "ours":  # ours-nodelay, ours-gcfreeze: experiments (serve_patched.py)
            module = "benchmarks.load.serve_patched"
            env["GS_BENCH_PATCH"] = kind.split("-", 1)[1]
        udp = [] if "edge" in extra else ["--udp", f"{HOST}:0"]  # an edge node takes no --udp
        return [sys.executable, "-m", module, "serve", *(["--open"] if open_mode else []), *udp,
                "--http", f"{HOST}:0", "--log-level", "warning", *_no_limits(), *extra]
    if kind == "naive":
        return [sys.executable, "-m", "benchmarks.load.naive_ws", "--udp", f"{HOST}:0", "--http", f"{HOST}:0", *extra]
    if kind == "naive-node":
        return [ensure_node_peer(), str(NODE_PEER / "server.js"), "--udp", f"{HOST}:0", "--http", f"{HOST}:0",
                "--python", sys.executable, *extra]
    raise ValueError(kind)


@contextmanager
def server(kind: str = "ours", *extra: str, open_mode: bool = True):
    """One server of ``kind`` on free ports (``cluster``: see ``cluster``); yields a ``ServerProc``.
    ``open_mode=False`` (ours): tokens required, as in production."""
    if kind.endswith("-record"):
        base = kind.removesuffix("-record")
        if base.startswith("cluster"):
            extra = (extra[0] if extra else edges_of(base), *extra[1:])
        with tempfile.TemporaryDirectory(prefix="gs-bench-rec-") as rec, \
                server(base, *extra, "--record", rec, open_mode=open_mode) as s:
            s.kind = kind
            yield s
        return
    if kind.startswith("cluster"):
        with cluster(*(extra or (edges_of(kind),))) as c:
            c.kind = kind
            yield c
        return
    env = server_env()
    args = _command(kind, env, extra, open_mode)
    log = tempfile.NamedTemporaryFile("w+", prefix=f"bench-{kind}-", suffix=".log", delete=False)
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, text=True, env=env, cwd=server_tree())
    try:
        line = proc.stdout.readline()
        udp, ws = _UDP.search(line), _WS.search(line)
        if not ws:
            stop_proc(proc)
            raise RuntimeError(f"{kind} server did not start: {line!r} {Path(log.name).read_text()[-2000:]}")
        yield ServerProc(kind, proc, int(udp.group(1)) if udp else 0, int(ws.group(1)), log.name)
    finally:
        stop_proc(proc)
        log.close()
        try:
            os.unlink(log.name)
        except OSError:
            pass


def edges_of(kind: str) -> str:
    """The edge count of a cluster kind: ``cluster`` 2, ``cluster4`` 4."""
    return kind.removeprefix("cluster").removesuffix("-record") or "2"


@functools.lru_cache(maxsize=4)
def _serve_help(tree: str) -> str:
    return subprocess.run([sys.executable, "-m", "groundstation.cli", "serve", "--help"], capture_output=True,
                          text=True, env=server_env(), cwd=tree, timeout=60).stdout


def has_roles() -> bool:
    """Whether ``groundstation serve`` has the Redis scale-out roles (``--role ingest|edge``)."""
    return "--role" in _serve_help(str(server_tree()))


def _no_limits() -> list[str]:
    """Flags lifting the per-address connection limit (all consoles come from 127.0.0.1) and giving ``/healthz``
    its details without a token (the harness reads them), as far as the server has them."""
    usage = _serve_help(str(server_tree()))
    return [*(["--max-connections-per-address", "0"] if "--max-connections-per-address" in usage else []),
            *(["--health-details"] if "--health-details" in usage else [])]


@contextmanager
def cluster(edges: str = "2", *ingest_extra: str):
    """1 ingest node (``ingest_extra``: more ``serve`` flags) + ``edges`` edge nodes sharing a private
    ``redis-server``; consoles go to the edges.

    ``ServerProc.ws_urls`` lists the edges and the load generators spread their
    consoles over them (``pool.run_pool(urls, ...)``). Needs ``groundstation
    serve --role ingest|edge --redis URL`` (``has_roles()``; docs/deploy.md).
    """
    if not has_roles():
        raise RuntimeError("groundstation serve has no --role (the Redis scale-out): no cluster mode")
    redis = shutil.which("redis-server")
    if redis is None:
        raise RuntimeError("redis-server is not installed")
    with socket.socket() as s:  # a free port for a private redis-server
        s.bind((HOST, 0))
        port = s.getsockname()[1]
    rproc = subprocess.Popen([redis, "--bind", HOST, "--port", str(port), "--save", "", "--appendonly", "no"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://{HOST}:{port}/0"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection((HOST, port), 0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or rproc.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        with ExitStack() as stack:
            ingest = stack.enter_context(server("ours", "--role", "ingest", "--redis", url, *ingest_extra))
            ingest.kind = "cluster"
            ingest.edges = [stack.enter_context(server("ours", "--role", "edge", "--redis", url))
                            for _ in range(int(edges))]
            yield ingest
    finally:
        stop_proc(rproc)


@contextmanager
def simulator(udp_port: int, bitrate: float, duration: float | None = None):
    """``groundstation simulate`` sending to ``udp_port``; yields the Popen (stdout piped)."""
    args = [sys.executable, "-m", "groundstation.cli", "simulate", "--to", f"{HOST}:{udp_port}",
            "--bitrate", str(int(bitrate))]
    if duration is not None:
        args += ["--duration", str(duration)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=server_env(), cwd=server_tree())
    try:
        yield proc
    finally:
        stop_proc(proc)


_SENT = re.compile(r"sent (\d+) datagrams, (\d+) minor frames, (\d+) bytes")


def parse_sim_output(text: str) -> dict:
    m = _SENT.search(text or "")
    if not m:
        return {}
    return {"datagrams": int(m.group(1)), "frames": int(m.group(2)), "bytes": int(m.group(3))}
