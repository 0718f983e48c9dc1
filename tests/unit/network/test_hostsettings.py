"""apply_host_settings on a scratch /proc/sys and resolv.conf."""

from __future__ import annotations

from pathlib import Path

from virthost.network.hostsettings import HEADER, apply_host_settings
from virthost.network.model import NetConfig, SetupRequest, merge


def config(networks: dict[str, dict[str, object]]) -> NetConfig:
    return merge(NetConfig({}, {}), SetupRequest.from_wire(networks, {}, {}))


def test_autoconf_sysctls_and_nameservers(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    for device in ("net1", "eth2"):
        conf = proc / "net" / "ipv6" / "conf" / device
        conf.mkdir(parents=True)
        (conf / "autoconf").write_text("1\n")
        (conf / "accept_ra").write_text("1\n")
    resolv = tmp_path / "resolv.conf"
    desired = config(
        {
            "net1": {
                "nic": "eth1",
                "ipaddr": "192.0.2.2",
                "prefix": 24,
                "gateway": "192.0.2.1",
                "defaultRoute": True,
                "nameservers": ["192.0.2.53", "192.0.2.54"],
                "ipv6autoconf": False,
            },
            "net2": {"nic": "eth2", "bridged": False, "ipv6autoconf": True},
        }
    )
    changed = apply_host_settings(desired, proc, resolv)
    assert (proc / "net/ipv6/conf/net1/autoconf").read_text() == "0"
    assert (proc / "net/ipv6/conf/net1/accept_ra").read_text() == "0"
    assert (proc / "net/ipv6/conf/eth2/autoconf").read_text() == "1\n"  # already so
    assert resolv.read_text() == HEADER + "nameserver 192.0.2.53\nnameserver 192.0.2.54\n"
    assert len(changed) == 3
    assert apply_host_settings(desired, proc, resolv) == []  # nothing left to change


def test_no_nameservers_leaves_resolv_conf_alone(tmp_path: Path) -> None:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 10.0.0.1\n")
    apply_host_settings(config({"net1": {"nic": "eth1"}}), tmp_path / "proc", resolv)
    assert resolv.read_text() == "nameserver 10.0.0.1\n"
