"""Host.setupNetworks and friends: one transaction over the host's networks, never a lost host.

The flow follows VDSM's: the request is canonicalised and merged into the running
configuration, the result validated against the host, the ``before_network_setup`` hooks run
(they may rewrite the request), and the supervisor applies the difference with netlink. Then,
unless the request says otherwise, the daemon waits for the client to prove it still reaches
the host (Host.confirmConnectivity, ping or ping2 after the change): without that within
``connectivityTimeout`` seconds the previous configuration is applied again and the call
answers error 10. A failure while applying also restores the previous configuration.

Only one network change runs at a time (code 40 for a second one). Before applying, the
previous and the desired configurations are written down (:mod:`.persistence`), so a daemon
killed in the middle restores the previous configuration when it starts again; and at start
the safe configuration is restored when the running one differs from it (a change that was
never confirmed safe does not survive a restart, VDSM's restore-nets).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from virthost.common import errors
from virthost.hooks import AFTER_NETWORK_SETUP, AFTER_NETWORK_SETUP_FAIL, BEFORE_NETWORK_SETUP
from virthost.network import errors as ne
from virthost.network.model import NetConfig, SetupRequest, merge
from virthost.network.persistence import EMPTY, NetConfigStore
from virthost.network.validation import HostNics, validate

log = logging.getLogger("virthost.network")

POLL_INTERVAL = 0.1


class Applier(Protocol):
    """Applies ``desired`` over ``running`` on the host (the supervisor's setup_networks)."""

    def __call__(self, running: dict[str, Any], desired: dict[str, Any]) -> Any: ...


class JsonHooks(Protocol):
    def run_json(self, point: str, data: Any, *, raise_errors: bool = True) -> Any: ...


class NetworkService:
    def __init__(
        self,
        store: NetConfigStore,
        apply: Applier,
        host_nics: Callable[[dict[str, Any]], HostNics],
        last_confirmation: Callable[[], float | None],
        hooks: JsonHooks | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._apply = apply
        self._host_nics = host_nics
        self._last_confirmation = last_confirmation
        self._hooks = hooks
        self._clock = clock
        self._busy = threading.Lock()

    # --- verbs -------------------------------------------------------------------------

    def setup(self, networks: Any, bondings: Any, options: Any) -> None:
        if not self._busy.acquire(blocking=False):
            raise errors.ResourceUnavailable("another network change is in progress")
        try:
            self._setup(networks or {}, bondings or {}, options or {})
        finally:
            self._busy.release()

    def set_safe(self) -> None:
        with self._busy:
            self._store.commit()

    def dirty(self) -> bool:
        return self._store.dirty()

    def running(self) -> dict[str, Any]:
        return self._store.running()

    # --- the transaction ---------------------------------------------------------------

    def _setup(self, networks: Any, bondings: Any, options: Any) -> None:
        wire = {"networks": networks, "bondings": bondings, "options": options}
        if self._hooks is not None:
            wire = dict(self._hooks.run_json(BEFORE_NETWORK_SETUP, {"request": wire})["request"])
        request = SetupRequest.from_wire(
            wire.get("networks") or {}, wire.get("bondings") or {}, wire.get("options") or {}
        )
        running = NetConfig.from_dict(self._store.running())
        desired = merge(running, request)
        validate(desired, request, self._host_nics(running.to_dict()))
        previous_dict, desired_dict = running.to_dict(), desired.to_dict()
        log.info(
            "Setting up networks %s, bonds %s",
            sorted(request.networks) or "-",
            sorted(request.bonds) or "-",
        )
        self._store.begin(previous_dict, desired_dict)
        try:
            self._apply(previous_dict, desired_dict)
            if request.connectivity_check:
                # Only a confirmation sent once the change is in place proves anything.
                self._wait_for_client(self._clock(), request.connectivity_timeout)
        except BaseException as e:
            log.error("Network setup failed (%s); restoring the previous configuration", e)
            self._restore(previous_dict, desired_dict)
            self._store.end()
            self._run_hook(AFTER_NETWORK_SETUP_FAIL, wire)
            raise
        self._store.set_running(desired_dict)
        self._store.end()
        if request.commit_on_success:
            self._store.commit()
        self._run_hook(AFTER_NETWORK_SETUP, wire)
        log.info("Network setup done")

    def _wait_for_client(self, since: float, timeout: float) -> None:
        deadline = since + timeout
        while True:
            seen = self._last_confirmation()
            if seen is not None and seen >= since:
                return
            if self._clock() >= deadline:
                raise ne.LostConnection(
                    f"no client confirmed connectivity within {timeout:g} s; rolled back"
                )
            time.sleep(POLL_INTERVAL)

    def _restore(self, previous: dict[str, Any], current: dict[str, Any]) -> None:
        """Apply ``previous`` over what may now be ``current``; a failure is logged loudly."""
        try:
            self._apply(current, previous)
        except Exception:
            log.exception("Restoring the previous network configuration failed")

    def _run_hook(self, point: str, wire: dict[str, Any]) -> None:
        if self._hooks is None:
            return
        try:
            self._hooks.run_json(point, {"request": wire}, raise_errors=False)
        except Exception:
            log.exception("%s hooks failed", point)

    # --- start-up ----------------------------------------------------------------------

    def restore_at_start(self) -> None:
        """Settle an apply a killed daemon left, then come back to the safe configuration."""
        with self._busy:
            interrupted = self._store.interrupted()
            if interrupted is not None:
                previous, desired = interrupted
                log.warning("A network change was interrupted; restoring what came before it")
                self._restore(previous, desired)
                self._store.set_running(previous)
                self._store.end()
            safe = self._store.safe()
            running = self._store.running()
            target = safe if safe is not None else EMPTY
            if running != target:
                log.warning("The running network configuration is not the safe one; restoring")
                self._apply(running, target)
                self._store.set_running(target)
            # The kernel may have lost what the files say (a reboot): make sure all is there.
            # Applying is idempotent, so a host that has it all sees no change.
            self._apply(dict(EMPTY), target)
