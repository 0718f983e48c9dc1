"""Benchmark: Host.setupNetworks of virthostd against plain pyroute2 calls, in one run.

A fresh network namespace plays the host (see bench/_network.py): ``nic0`` carries the client's
path to the daemon, ``nic1`` .. ``nicN`` are veth nics whose peers sit in a second namespace.
The real virthost-supervisor and virthostd run inside it (``ip netns exec``), the clients
outside, as an engine would. Measured, for N bridged networks (each a bridge over its own nic
with a static IPv4 address) created in one Host.setupNetworks call:

1. With connectivityCheck on, confirmed by a second client calling Host.confirmConnectivity
   every few milliseconds from the moment the call is sent: the time from the call to its
   answer. The apply alone is timed with connectivityCheck off (and the removal of the N
   networks likewise), and both are split with the daemon's own log lines: from the call to
   "Setting up networks" (canonicalising, validating against the host's nics), from there to
   "Network setup done" (the supervisor's netlink apply, the state files, the wait for the
   client), and from there to the answer.
2. Rollback: the same change with connectivityCheck on, connectivityTimeout 2 s and nobody
   confirming. It answers code 10; the time from the call to the answer, and the part after
   the timeout (from the daemon's "Network setup failed" line: restoring the previous
   configuration, then answering).
3. Baseline: the same N bridges, enslaved nics, addresses and links up made with plain
   pyroute2 calls through ``pyroute2.NetNS`` on the same nics of the same namespace, and their
   removal, alternating with runs of (1) with connectivityCheck off; ratios ours/baseline.

Nothing asserts; what the kernel holds after each step is checked and reported. Everything is
removed on the way out, whatever failed: the daemon and supervisor stopped, both namespaces
deleted (their veths with them), the work directories removed.

    venv/bin/python bench/network.py [--networks 50] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import _daemon  # first: it puts tests/ on sys.path (fixtures)
import _network

from fixtures import daemon as daemon_fixtures
from virthost.api.schema import Schema
from virthost.client import Client, connect
from virthost.client import errors as client_errors
from virthost.network.model import NetConfig, SetupRequest, merge
from virthost.network.netlink import plan

LOST_CONNECTION = 10  # VDSM's code for a change rolled back for want of a confirmation
CONFIRM_PAUSE = 0.01  # seconds between two Host.confirmConnectivity of the confirming client
ROLLBACK_TIMEOUT = 2  # connectivityTimeout of the change nobody confirms
CALL_TIMEOUT = 300.0
SETTING_UP = "Setting up networks"
DONE = "Network setup done"
FAILED = "Network setup failed"


def note(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def ms(seconds: float | None) -> str:
    return "    n/a" if seconds is None else f"{seconds * 1000:7.0f}"


# --- one timed call --------------------------------------------------------------------------


@dataclass
class TimedCall:
    """A Host.setupNetworks from the call to its answer, split by the daemon's log lines."""

    total: float
    code: int | None  # the error code it answered, None for success
    to_setting_up: float | None = None  # call -> "Setting up networks"
    in_daemon: float | None = None  # "Setting up networks" -> "Network setup done"/"failed"
    after: float | None = None  # that line -> the answer


def timed_setup(
    cli: Client, log: _network.DaemonLog, networks: dict[str, Any], options: dict[str, Any]
) -> TimedCall:
    log.mark()
    wall_start = time.time()
    t0 = time.perf_counter()
    code: int | None = None
    try:
        cli.Host.setupNetworks(networks=networks, bondings={}, options=options)
    except client_errors.ServerError as e:
        code = e.code
    total = time.perf_counter() - t0
    end = DONE if code is None else FAILED
    marks = log.wait_for(SETTING_UP, end)
    call = TimedCall(total, code)
    if SETTING_UP in marks and end in marks:
        call.to_setting_up = marks[SETTING_UP] - wall_start
        call.in_daemon = marks[end] - marks[SETTING_UP]
        call.after = wall_start + total - marks[end]
    return call


class Confirmer:
    """A second client calling Host.confirmConnectivity in a loop while it is on: the engine
    proving it still reaches the host. Connected before, so the handshake is not timed."""

    def __init__(self, cli: Client) -> None:
        self._cli = cli
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.calls = 0
        self.error: BaseException | None = None

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._cli.Host.confirmConnectivity()
                self.calls += 1
                self._stop.wait(CONFIRM_PAUSE)
        except BaseException as e:
            self.error = e

    @contextmanager
    def running(self) -> Iterator[Confirmer]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(30)


# --- the runs --------------------------------------------------------------------------------


@dataclass
class Results:
    networks: int
    plan_steps: int
    netns_open: float
    applies: list[TimedCall] = field(default_factory=list)
    removals: list[TimedCall] = field(default_factory=list)
    baseline_applies: list[float] = field(default_factory=list)
    baseline_removals: list[float] = field(default_factory=list)
    confirmed: TimedCall | None = None
    confirmations: int = 0
    rollback: TimedCall | None = None
    read_state: float | None = None  # one read of the kernel state, the networks in place
    checks: list[str] = field(default_factory=list)  # what the kernel held where it mattered


def plan_steps(networks: dict[str, Any]) -> int:
    """Steps of the applier's plan from nothing to ``networks`` (each one done is followed by
    a read of the whole kernel state)."""
    desired = merge(NetConfig(), SetupRequest.from_wire(networks, {}, {}))
    return len(plan(NetConfig(), desired))


class Bench:
    """The measured sequence against one daemon; every step leaves no network behind."""

    def __init__(
        self,
        host: _network.NetHost,
        services: _daemon.Services,
        schema: Schema,
        ns: Any,
        results: Results,
    ) -> None:
        self.host = host
        self.services = services
        self.schema = schema
        self.ns = ns
        self.results = results
        self.log = _network.DaemonLog(services.daemon_log)
        self.nets = host.networks
        self.wire = {net.name: net.wire() for net in self.nets}
        self.remove = {net.name: {"remove": True} for net in self.nets}

    def client(self) -> Client:
        pki = self.services.pki
        return connect(
            self.services.host,
            self.services.port,
            ca_file=pki.ca_cert,
            cert_file=pki.cert("client"),
            key_file=pki.key("client"),
            timeout=CALL_TIMEOUT,
            schema=self.schema,
        )

    def check(self, when: str, complete: int | None = None) -> None:
        """Record what the kernel holds: ``complete`` networks in place, or no bridge left."""
        if complete is None:
            left = _network.bridges_left(self.ns)
            self.results.checks.append(f"{when}: {left} bridge(s) left")
        else:
            held = _network.bridges_in_place(self.ns, self.nets)
            self.results.checks.append(f"{when}: {held}/{complete} networks in place")

    def unconfirmed(self, cli: Client, run: int) -> None:
        off = {"connectivityCheck": False}
        self.results.applies.append(timed_setup(cli, self.log, self.wire, off))
        self.check(f"ours, run {run + 1}, applied", len(self.nets))
        self.results.removals.append(timed_setup(cli, self.log, self.remove, off))
        self.check(f"ours, run {run + 1}, removed")

    def baseline(self, cli: Client, run: int) -> None:
        """(``cli`` unused: the same signature as :meth:`unconfirmed`, so the two alternate.)"""
        self.results.baseline_applies.append(_network.baseline_apply(self.ns, self.nets))
        self.check(f"baseline, run {run + 1}, applied", len(self.nets))
        self.results.baseline_removals.append(_network.baseline_remove(self.ns, self.nets))
        self.check(f"baseline, run {run + 1}, removed")

    def confirmed(self, cli: Client) -> None:
        options = {"connectivityCheck": True, "connectivityTimeout": 60}
        with self.client() as second, Confirmer(second).running() as confirmer:
            self.results.confirmed = timed_setup(cli, self.log, self.wire, options)
        self.results.confirmations = confirmer.calls
        if confirmer.error is not None:
            raise RuntimeError(f"the confirming client failed: {confirmer.error}")
        self.check("confirmed change", len(self.nets))
        self.results.read_state = _network.read_state_seconds(self.host.host_ns)
        timed_setup(cli, self.log, self.remove, {"connectivityCheck": False})

    def rollback(self, cli: Client) -> None:
        options = {"connectivityCheck": True, "connectivityTimeout": ROLLBACK_TIMEOUT}
        self.results.rollback = timed_setup(cli, self.log, self.wire, options)
        self.check("after the rollback")
        if cli.Host.getNetworkCapabilities()["networks"]:
            self.results.checks.append("after the rollback: the daemon still reports networks")

    def run(self, runs: int) -> None:
        with self.client() as cli:
            cli.Host.setLogLevel(level="INFO", name="virthost.network")  # the phase lines
            for run in range(runs):
                note(f"run {run + 1}/{runs}: ours (connectivityCheck off) and the baseline")
                order = [self.unconfirmed, self.baseline]
                for step in order if run % 2 == 0 else reversed(order):
                    step(cli, run)
            note("connectivityCheck on, confirmed by a second client")
            self.confirmed(cli)
            note(f"connectivityCheck on, nobody confirming: rollback after {ROLLBACK_TIMEOUT} s")
            self.rollback(cli)


# --- the report ------------------------------------------------------------------------------


def med(values: list[float]) -> float:
    return _daemon.median(values)


def med_of(calls: list[TimedCall], attr: str) -> float | None:
    values = [v for c in calls if (v := getattr(c, attr)) is not None]
    return med(values) if values else None


def report(results: Results, elapsed: float) -> None:
    n = results.networks
    print()
    print(
        f"virthostd Host.setupNetworks benchmark: {os.cpu_count()} CPUs, {n} bridged networks "
        f"(each a bridge over its own veth nic with a static IPv4 address) in one call;\n"
        f"{len(results.applies)} run(s) each way, medians; the applier's plan: "
        f"{results.plan_steps} steps; run took {elapsed:.0f} s"
    )
    print()
    header = (
        f"  {'':<40} {'total':>7} {'to log':>7} {'daemon':>7} {'answer':>7}   (ms)\n"
        f"  {'':<40} {'':>7} {'line':>7} {'phase':>7} {'after':>7}"
    )

    def row(label: str, calls: list[TimedCall]) -> None:
        print(
            f"  {label:<40} {ms(med([c.total for c in calls]))} "
            f"{ms(med_of(calls, 'to_setting_up'))} {ms(med_of(calls, 'in_daemon'))} "
            f"{ms(med_of(calls, 'after'))}"
        )

    print("1. Host.setupNetworks, from the call to the answer")
    print(header)
    if results.confirmed is not None:
        row("create, check on, confirmed", [results.confirmed])
    row("create, check off (the apply)", results.applies)
    row("remove, check off", results.removals)
    print(
        f'   \'daemon phase\' runs from its "{SETTING_UP}" line to "{DONE}": the\n'
        "   supervisor's netlink apply, the state files and (check on) the wait for a\n"
        f"   confirmation; the second client sent {results.confirmations} confirmations "
        f"(one every {CONFIRM_PAUSE * 1000:.0f} ms) during the confirmed call."
    )
    if results.read_state is not None:
        print(
            f"   The applier reads the whole kernel state before its plan and after each step\n"
            f"   it changes something with: one read with the {n} networks in place takes\n"
            f"   {ms(results.read_state).strip()} ms there (median of 20), and the plan has "
            f"{results.plan_steps} steps."
        )
    print()
    print(f"2. Rollback: check on, connectivityTimeout {ROLLBACK_TIMEOUT} s, nobody confirming")
    rb = results.rollback
    if rb is not None:
        print(f"   answered code {rb.code} (expected {LOST_CONNECTION})")
        print(f"   from the call to the answer:              {ms(rb.total)} ms")
        if rb.to_setting_up is not None and rb.in_daemon is not None and rb.after is not None:
            print(
                f'   call -> "{SETTING_UP}":             {ms(rb.to_setting_up)} ms\n'
                f'   apply + wait until "{FAILED}":  {ms(rb.in_daemon)} ms\n'
                f"   after the timeout (restore + answer):     {ms(rb.after)} ms"
            )
            if rb.in_daemon > ROLLBACK_TIMEOUT + 0.2:  # the wait polls every 0.1 s
                print(
                    f"   (the apply alone outlasted the {ROLLBACK_TIMEOUT} s timeout: the daemon "
                    "found it expired\n   as soon as the apply ended, and restored at once)"
                )
        else:
            print("   (the daemon's log lines were not found: no split)")
    print()
    print("3. Baseline: the same bridges with plain pyroute2 calls (pyroute2.NetNS)")
    base_apply = med(results.baseline_applies)
    base_remove = med(results.baseline_removals)
    ours_apply = med([c.total for c in results.applies])
    ours_remove = med([c.total for c in results.removals])
    print(
        f"   create (bridge, enslave, nic up, address, bridge up): {ms(base_apply)} ms\n"
        f"   remove (delete each bridge):                          {ms(base_remove)} ms\n"
        f"   (opening the NetNS handle, not counted: {ms(results.netns_open).strip()} ms)"
    )
    print()
    print("Ratios ours/baseline (medians; ours is the whole call, check off)")
    for label, ours, base in (
        ("apply:  ", ours_apply, base_apply),
        ("removal:", ours_remove, base_remove),
    ):
        print(f"   {label} {ours / base:6.1f}  ({ms(ours).strip()} ms / {ms(base).strip()} ms)")
    in_daemon = med_of(results.applies, "in_daemon")
    if in_daemon is not None:
        print(f"   apply, daemon phase only: {in_daemon / base_apply:6.1f}")
    print()
    print("What the kernel held:")
    for line in results.checks:
        print(f"   {line}")


# --- main ------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--networks", type=int, default=50, help="bridged networks (1..250)")
    parser.add_argument("--runs", type=int, default=3, help="unconfirmed runs, each way")
    args = parser.parse_args()
    if not 1 <= args.networks <= 250 or args.runs < 1:
        parser.error("--networks must be within 1..250, --runs at least 1")
    if os.geteuid() != 0:
        raise SystemExit("the network benchmark needs root (network namespaces)")

    schema = Schema.default()
    started = time.monotonic()
    host = _network.NetHost(args.networks)
    work = _daemon.make_workdir("virthost-bench-network-")
    results: Results | None = None
    try:
        note(f"namespaces {host.host_ns} and {host.peer_ns}, {args.networks + 1} veth pairs")
        host.create()
        overrides = _daemon.quiet_config(rpc={"address": "0.0.0.0"})
        services = daemon_fixtures.prepare(
            _daemon.make_workdir("virthost-bench-network-"),
            _daemon.make_pki(work),
            overrides=overrides,
        )
        services.host = _network.HOST_ADDR
        services.command_prefix = ("ip", "netns", "exec", host.host_ns)
        try:
            services.start_supervisor()
            services.start_daemon()
            ns, netns_open = _network.open_netns(host.host_ns)
            try:
                wire = {net.name: net.wire() for net in host.networks}
                results = Results(args.networks, plan_steps(wire), netns_open)
                Bench(host, services, schema, ns, results).run(args.runs)
            finally:
                ns.close()
        except BaseException:
            note("the daemon's log ends with:\n" + services.log_text()[-4000:])
            raise
        finally:
            _daemon.cleanup(services)
    finally:
        for failure in host.destroy():
            note(f"cleanup: {failure}")
        shutil.rmtree(work, ignore_errors=True)
    report(results, time.monotonic() - started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
