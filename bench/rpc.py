"""Benchmark: Host.ping2 over STOMP/TLS against a bare TLS STOMP echo in the same run.

Prints round-trip p50/p99 and throughput with 1 and 16 concurrent clients for

* virthostd (the real daemon with its supervisor, mutual TLS, full dispatch), and
* a baseline: the same kind of TLS socket served by one asyncio loop in its own process,
  parsing the same STOMP frames and answering each SEND with a MESSAGE of the same size,
  without JSON-RPC or dispatch,

and the ratios. Clients are separate processes (4 clients each), each client one TLS
connection doing one request at a time, identical for both servers.

    venv/bin/python bench/rpc.py [--seconds 3] [--clients 1,16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from virthost.common.pki import PkiPaths, client_context, init_dev_pki, server_context
from virthost.rpc.stomp.frame import Frame, FrameParser, encode

REPLY = "bench-replies-00000000-0000-0000-0000-000000000000"  # the baseline's reply shape
CLIENTS_PER_PROCESS = 4


# --- the baseline server -------------------------------------------------------------------


def _baseline_answer() -> bytes:
    body = json.dumps(
        {"jsonrpc": "2.0", "id": "00000000-0000-0000-0000-000000000000", "result": True},
        separators=(",", ":"),
    ).encode()
    headers = {
        "destination": REPLY,
        "content-type": "application/json",
        "subscription": "s",
        "message-id": "1",
    }
    return encode(Frame("MESSAGE", headers, body))


class _EchoProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.parser = FrameParser()
        self.answer = _baseline_answer()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        for frame in self.parser.feed(data):
            if frame.command == "CONNECT":
                self.transport.write(encode(Frame("CONNECTED", {"version": "1.2"})))
            elif frame.command == "SEND":
                self.transport.write(self.answer)


def _run_baseline(port: int, pki_root: str, ready: Any) -> None:
    paths = PkiPaths(Path(pki_root))
    ctx = server_context(str(paths.ca_cert), str(paths.cert("host")), str(paths.key("host")))
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(loop.create_server(_EchoProtocol, "127.0.0.1", port, ssl=ctx))
    ready.set()
    try:
        loop.run_forever()
    finally:
        server.close()


# --- the load generator --------------------------------------------------------------------


def _client(port: int, pki_root: str, seconds: float, start_at: float, out: list[float]) -> None:
    paths = PkiPaths(Path(pki_root))
    ctx = client_context(str(paths.ca_cert), str(paths.cert("client")), str(paths.key("client")))
    sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    parser = FrameParser()
    pending: list[Frame] = []

    def receive() -> Frame:
        while not pending:
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("closed")
            pending.extend(parser.feed(data))
        return pending.pop(0)

    sock.sendall(encode(Frame("CONNECT", {"accept-version": "1.2", "heart-beat": "0,0"})))
    receive()
    # each client its own reply queue: answers go to every subscriber of the reply-to
    reply = f"bench-replies-{uuid.uuid4()}"
    sock.sendall(encode(Frame("SUBSCRIBE", {"destination": reply, "id": "s", "receipt": "r"})))
    request_body = json.dumps(
        {
            "jsonrpc": "2.0",
            "method": "Host.ping2",
            "params": {},
            "id": "00000000-0000-0000-0000-000000000000",
        }
    ).encode()
    request = encode(
        Frame(
            "SEND",
            {
                "destination": "jms.topic.vdsm_requests",
                "reply-to": reply,
                "content-type": "application/json",
            },
            request_body,
        )
    )
    while time.monotonic() < start_at:
        time.sleep(0.001)
    deadline = time.monotonic() + seconds
    while True:
        t0 = time.perf_counter()
        if t0 > deadline:
            break
        sock.sendall(request)
        frame = receive()
        while frame.command == "RECEIPT":
            frame = receive()
        out.append(time.perf_counter() - t0)
    sock.close()


def _process(
    port: int, pki_root: str, clients: int, seconds: float, start_at: float, queue: Any
) -> None:
    results: list[list[float]] = [[] for _ in range(clients)]
    threads = [
        threading.Thread(target=_client, args=(port, pki_root, seconds, start_at, results[i]))
        for i in range(clients)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    queue.put([x for r in results for x in r])


def measure(port: int, pki_root: str, clients: int, seconds: float) -> dict[str, float]:
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    start_at = time.monotonic() + 1.0
    procs = []
    remaining = clients
    while remaining > 0:
        n = min(CLIENTS_PER_PROCESS, remaining)
        remaining -= n
        procs.append(
            ctx.Process(target=_process, args=(port, pki_root, n, seconds, start_at, queue))
        )
    for p in procs:
        p.start()
    latencies: list[float] = []
    for _ in procs:
        latencies.extend(queue.get(timeout=seconds + 60))
    for p in procs:
        p.join()
    latencies.sort()
    count = len(latencies)
    return {
        "calls": count,
        "throughput": count / seconds,
        "p50_ms": 1000 * latencies[count // 2],
        "p99_ms": 1000 * latencies[min(count - 1, int(count * 0.99))],
    }


# --- the daemon under test -----------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_daemon(work: Path, pki: PkiPaths) -> tuple[list[subprocess.Popen[bytes]], int]:
    port = _free_port()
    user = "virthost" if os.geteuid() == 0 else ""
    config = work / "virthostd.toml"
    config.write_text(
        f'[daemon]\nuser = "{user}"\nstate_dir = "{work}/lib"\nrun_dir = "{work}/run"\n'
        f'log_level = "WARNING"\n[rpc]\naddress = "127.0.0.1"\nport = {port}\n'
        f'[pki]\nca_file = "{pki.ca_cert}"\ncert_file = "{pki.cert("host")}"\n'
        f'key_file = "{pki.key("host")}"\n[supervisor]\nsocket = "{work}/run/sv.sock"\n'
    )
    bindir = Path(sys.executable).parent
    log = open(work / "daemon.log", "ab")  # noqa: SIM115 - outlives this function
    supervisor = subprocess.Popen(
        [str(bindir / "virthost-supervisor"), "-c", str(config)], stdout=log, stderr=log
    )
    daemon = subprocess.Popen(
        [str(bindir / "virthostd"), "-c", str(config)], stdout=log, stderr=log
    )
    ctx = client_context(str(pki.ca_cert), str(pki.cert("client")), str(pki.key("client")))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=2)):
                return [daemon, supervisor], port
        except (OSError, ssl.SSLError):
            time.sleep(0.1)
    raise SystemExit("virthostd did not start; see " + str(work / "daemon.log"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--clients", default="1,16")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="virthost-bench-", dir="/tmp"))
    work.chmod(0o755)
    pki = init_dev_pki(work / "pki", "localhost")
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    baseline_port = _free_port()
    baseline = ctx.Process(target=_run_baseline, args=(baseline_port, str(pki.root), ready))
    baseline.start()
    ready.wait(30)
    procs, port = start_daemon(work, pki)
    try:
        rows = []
        for clients in (int(c) for c in args.clients.split(",")):
            base = measure(baseline_port, str(pki.root), clients, args.seconds)
            ours = measure(port, str(pki.root), clients, args.seconds)
            rows.append((clients, base, ours))
        print(f"Host.ping2 over STOMP/TLS, {args.seconds:g} s per run, {os.cpu_count()} CPUs")
        print(f"{'clients':>7} {'server':>9} {'calls/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
        for clients, base, ours in rows:
            for name, r in (("baseline", base), ("virthostd", ours)):
                print(
                    f"{clients:>7} {name:>9} {r['throughput']:>9.0f} {r['p50_ms']:>8.2f} "
                    f"{r['p99_ms']:>8.2f}"
                )
            ratio = ours["throughput"] / base["throughput"]
            print(
                f"{clients:>7} {'ratio':>9} {ratio:>9.2f} "
                f"{ours['p50_ms'] / base['p50_ms']:>8.2f} "
                f"{ours['p99_ms'] / base['p99_ms']:>8.2f}"
            )
        for clients, base, ours in rows:
            ratio = ours["throughput"] / base["throughput"]
            print(f"throughput ratio virthostd/baseline at {clients} clients: {ratio:.2f}")
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(20)
        baseline.terminate()
        baseline.join(10)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
