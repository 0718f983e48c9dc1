"""Polling qemu-guest-agent for what the engine shows about a guest.

Every poll, each VM whose agent is connected gets one job in the periodic executor, which
asks libvirt (time-boxed: an agent that stopped answering only costs its own job) for the
guest's identity, OS, time zone, users, file systems and network interfaces. The answers are
kept on the VM and merged into its statistics; getStats never waits for an agent.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Mapping
from typing import Any

import libvirt
import libvirt_qemu  # type: ignore[import-untyped]

from virthost.common import errors
from virthost.common.executor import Executor
from virthost.virt.connection import LibvirtConnection
from virthost.virt.container import VmContainer
from virthost.virt.vm import Vm

log = logging.getLogger("virthost.virt.guestagent")

INFO_TYPES = (
    libvirt.VIR_DOMAIN_GUEST_INFO_USERS
    | libvirt.VIR_DOMAIN_GUEST_INFO_OS
    | libvirt.VIR_DOMAIN_GUEST_INFO_TIMEZONE
    | libvirt.VIR_DOMAIN_GUEST_INFO_HOSTNAME
    | libvirt.VIR_DOMAIN_GUEST_INFO_FILESYSTEM
)


def _indexed(info: Mapping[str, Any], prefix: str) -> list[dict[str, Any]]:
    count = int(info.get(f"{prefix}.count", 0))
    items: list[dict[str, Any]] = [{} for _ in range(count)]
    for key, value in info.items():
        if key.startswith(prefix + "."):
            index, _, field = key[len(prefix) + 1 :].partition(".")
            if index.isdigit() and int(index) < count:
                items[int(index)][field] = value
    return items


def translate_guest_info(info: Mapping[str, Any]) -> dict[str, Any]:
    """libvirt's typed-parameter guest info -> VDSM's getStats fields."""
    result: dict[str, Any] = {}
    if "hostname" in info:
        result["guestFQDN"] = str(info["hostname"])
    if any(k.startswith("os.") for k in info):
        result["guestOsInfo"] = {
            "type": "linux" if info.get("os.kernel-release") else "",
            "arch": str(info.get("os.machine", "")),
            "kernel": str(info.get("os.kernel-release", "")),
            "distribution": str(info.get("os.name", "")),
            "version": str(info.get("os.version-id", info.get("os.version", ""))),
            "codename": str(info.get("os.pretty-name", "")),
        }
    if "timezone.offset" in info:
        result["guestTimezone"] = {
            "zone": str(info.get("timezone.name", "")),
            "offset": int(info["timezone.offset"]) // 60,
        }
    users = [str(u.get("name", "")) for u in _indexed(info, "user") if u.get("name")]
    result["username"] = ", ".join(users) if users else "None"
    disks = []
    for fs in _indexed(info, "fs"):
        if "total-bytes" in fs:
            disks.append(
                {
                    "path": str(fs.get("mountpoint", "")),
                    "fs": str(fs.get("fstype", "")),
                    "total": str(fs.get("total-bytes", 0)),
                    "used": str(fs.get("used-bytes", 0)),
                }
            )
    result["disksUsage"] = disks
    return result


def translate_interfaces(interfaces: Mapping[str, Any]) -> dict[str, Any]:
    net_ifaces = []
    guest_ips: list[str] = []
    for name, iface in sorted(interfaces.items()):
        inet, inet6 = [], []
        for addr in iface.get("addrs") or []:
            text = str(addr.get("addr", ""))
            if addr.get("type") == libvirt.VIR_IP_ADDR_TYPE_IPV4:
                inet.append(text)
            else:
                inet6.append(text)
        net_ifaces.append(
            {"name": name, "hw": str(iface.get("hwaddr") or ""), "inet": inet, "inet6": inet6}
        )
        if name != "lo":
            guest_ips += inet + inet6
    return {"netIfaces": net_ifaces, "guestIPs": " ".join(guest_ips)}


class GuestAgentPoller:
    def __init__(
        self,
        libvirt_conn: LibvirtConnection,
        vms: VmContainer,
        executor: Executor,
        command_timeout: float = 5.0,
    ) -> None:
        self._libvirt = libvirt_conn
        self._vms = vms
        self._executor = executor
        self._timeout = command_timeout

    def poll_all(self) -> None:
        """The periodic tick: one job per VM with a connected agent."""
        for vm in self._vms.all():
            if vm.guest_agent_connected and not vm.is_down:
                try:
                    self._executor.dispatch(
                        functools.partial(self.poll, vm), timeout=self._timeout * 3, discard=True
                    )
                except errors.VirtHostError as e:
                    log.debug("cannot poll the agent of vm %s now: %s", vm.id, e)

    def poll(self, vm: Vm) -> None:
        def ask(conn: Any) -> dict[str, Any]:
            dom = conn.lookupByUUIDString(vm.id)
            found: dict[str, Any] = {}
            try:
                found.update(translate_guest_info(dom.guestInfo(INFO_TYPES, 0)))
            except libvirt.libvirtError as e:
                log.debug("vm %s: guest info: %s", vm.id, e)
            try:
                answer = libvirt_qemu.qemuAgentCommand(
                    dom, '{"execute": "guest-info"}', int(self._timeout), 0
                )
                version = json.loads(answer).get("return", {}).get("version", "")
                apps = [f"qemu-guest-agent-{version}"] if version else []
                kernel = found.get("guestOsInfo", {}).get("kernel")
                if kernel:
                    apps.append(f"kernel-{kernel}")
                found["appsList"] = apps
            except (libvirt.libvirtError, ValueError) as e:
                log.debug("vm %s: guest-info: %s", vm.id, e)
            try:
                source = libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT
                found.update(translate_interfaces(dom.interfaceAddresses(source, 0)))
            except libvirt.libvirtError as e:
                log.debug("vm %s: guest interfaces: %s", vm.id, e)
            return found

        try:
            info = self._libvirt.call(ask, f"guest agent of vm {vm.id}", self._timeout)
        except errors.VirtHostError as e:
            log.info("vm %s: guest agent did not answer: %s", vm.id, e)
            return
        with vm.lock:
            vm.guest_info.update(info)
