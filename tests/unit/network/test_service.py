"""NetworkService with a recording applier: the transaction, rollback, persistence, restore."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from virthost.common import errors
from virthost.network import errors as ne
from virthost.network.persistence import EMPTY, NetConfigStore
from virthost.network.service import NetworkService
from virthost.network.validation import HostNics

NET = {"nic": "eth1", "ipaddr": "192.0.2.10", "netmask": "255.255.255.0", "mtu": 1400}


class Host:
    """The applier and the client's confirmations, recorded."""

    def __init__(self) -> None:
        self.applied: list[tuple[dict[str, Any], dict[str, Any]]] = []
        self.fail_on: int | None = None
        self.confirm_on_apply = True
        self.now = 0.0
        self.block: threading.Event | None = None

    def apply(self, running: dict[str, Any], desired: dict[str, Any]) -> None:
        self.applied.append((running, desired))
        if self.block is not None:
            self.block.wait(10)
        if self.fail_on is not None and len(self.applied) == self.fail_on:
            raise ne.BadAddress("the kernel said no")

    def last_confirmation(self) -> float | None:
        """A client that keeps confirming has just done so; a cut-off one never did."""
        return self.now if self.confirm_on_apply else None

    def clock(self) -> float:
        self.now += 1.0  # every look at the clock lets a second pass
        return self.now


def make(tmp_path: Path, host: Host) -> tuple[NetworkService, NetConfigStore]:
    store = NetConfigStore(tmp_path)
    service = NetworkService(
        store,
        host.apply,
        lambda running: HostNics(nics=frozenset({"eth0", "eth1"})),
        host.last_confirmation,
        clock=host.clock,
    )
    return service, store


def test_a_confirmed_change_becomes_the_running_configuration(tmp_path: Path) -> None:
    host = Host()
    service, store = make(tmp_path, host)
    service.setup({"net1": NET}, {}, {"connectivityTimeout": 30})
    assert host.applied[0][0] == EMPTY
    assert set(host.applied[0][1]["networks"]) == {"net1"}
    assert store.running()["networks"]["net1"]["mtu"] == 1400
    assert service.dirty() and store.interrupted() is None
    service.set_safe()
    assert not service.dirty()
    service.setup({"net1": {"remove": True}}, {}, {"commitOnSuccess": True})
    assert store.running() == EMPTY and not service.dirty()


def test_without_confirmation_the_previous_configuration_comes_back(tmp_path: Path) -> None:
    host = Host()
    host.confirm_on_apply = False
    service, store = make(tmp_path, host)
    with pytest.raises(ne.LostConnection) as lost:
        service.setup({"net1": NET}, {}, {"connectivityTimeout": 5})
    assert lost.value.code == 10
    assert len(host.applied) == 2
    assert host.applied[1] == (host.applied[0][1], host.applied[0][0])  # undone exactly
    assert store.running() == EMPTY and store.interrupted() is None


def test_connectivity_check_off_needs_no_client(tmp_path: Path) -> None:
    host = Host()
    host.confirm_on_apply = False
    service, store = make(tmp_path, host)
    service.setup({"net1": NET}, {}, {"connectivityCheck": "false"})
    assert "net1" in store.running()["networks"]


def test_a_failed_apply_is_undone(tmp_path: Path) -> None:
    host = Host()
    host.fail_on = 1
    service, store = make(tmp_path, host)
    with pytest.raises(ne.BadAddress):
        service.setup({"net1": NET}, {}, {})
    assert len(host.applied) == 2 and host.applied[1][1] == EMPTY
    assert store.running() == EMPTY


def test_bad_requests_are_refused_before_anything_changes(tmp_path: Path) -> None:
    host = Host()
    service, store = make(tmp_path, host)
    with pytest.raises(ne.BadNic) as bad:
        service.setup({"net1": {**NET, "nic": "eth9"}}, {}, {})
    assert bad.value.code == 23 and "eth9" in str(bad.value)
    with pytest.raises(errors.VirtHostError) as mtu:
        service.setup({"net1": {**NET, "mtu": 10}}, {}, {})
    assert mtu.value.code == 21
    assert host.applied == [] and store.running() == EMPTY


def test_one_change_at_a_time(tmp_path: Path) -> None:
    host = Host()
    host.block = threading.Event()
    service, _ = make(tmp_path, host)
    first = threading.Thread(target=service.setup, args=({"net1": NET}, {}, {}))
    first.start()
    while not host.applied:
        pass
    with pytest.raises(errors.ResourceUnavailable) as busy:
        service.setup({"net2": {**NET, "nic": "eth0", "ipaddr": "192.0.2.11"}}, {}, {})
    assert busy.value.code == 40
    host.block.set()
    first.join()


def test_restore_at_start_settles_an_interrupted_change(tmp_path: Path) -> None:
    host = Host()
    service, store = make(tmp_path, host)
    service.setup({"net1": NET}, {}, {"commitOnSuccess": True})
    safe = store.running()
    store.begin(safe, {"networks": {}, "bonds": {}})  # killed while removing net1
    host.applied.clear()
    service.restore_at_start()
    assert host.applied[0] == ({"networks": {}, "bonds": {}}, safe)  # the removal undone
    assert store.running() == safe and store.interrupted() is None
    assert host.applied[-1] == (EMPTY, safe)  # and everything safe is made sure of


def test_restore_at_start_drops_what_was_never_made_safe(tmp_path: Path) -> None:
    host = Host()
    service, store = make(tmp_path, host)
    service.setup({"net1": NET}, {}, {})
    running = store.running()
    host.applied.clear()
    service.restore_at_start()
    assert host.applied[0] == (running, EMPTY)
    assert store.running() == EMPTY


class Hooks:
    """Records hook points; the before-hook rewrites the request (changes the MTU)."""

    def __init__(self) -> None:
        self.points: list[tuple[str, Any]] = []

    def run_json(self, point: str, data: Any, *, raise_errors: bool = True) -> Any:
        self.points.append((point, data))
        if point == "before_network_setup":
            request = data["request"]
            return {"request": {**request, "networks": {"net1": {**NET, "mtu": 1300}}}}
        return data


def test_hooks_see_the_request_and_may_rewrite_it(tmp_path: Path) -> None:
    host, hooks = Host(), Hooks()
    store = NetConfigStore(tmp_path)
    service = NetworkService(
        store,
        host.apply,
        lambda running: HostNics(nics=frozenset({"eth0", "eth1"})),
        host.last_confirmation,
        hooks=hooks,
        clock=host.clock,
    )
    service.setup({"net1": NET}, {}, {})
    assert store.running()["networks"]["net1"]["mtu"] == 1300
    assert [p for p, _ in hooks.points] == ["before_network_setup", "after_network_setup"]
    host.fail_on = len(host.applied) + 1
    with pytest.raises(ne.BadAddress):
        service.setup({"net1": {"remove": True}}, {}, {})
    assert hooks.points[-1][0] == "after_network_setup_fail"


def test_a_confirmation_from_before_the_change_does_not_count(tmp_path: Path) -> None:
    host = Host()
    store = NetConfigStore(tmp_path)
    service = NetworkService(
        store,
        host.apply,
        lambda running: HostNics(nics=frozenset({"eth0", "eth1"})),
        lambda: 0.5,  # the client's last word came before the change was applied
        clock=host.clock,
    )
    with pytest.raises(ne.LostConnection):
        service.setup({"net1": NET}, {}, {"connectivityTimeout": 3})
    assert store.running() == EMPTY
