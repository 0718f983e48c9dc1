"""Host API translation details that do not need a daemon."""

from __future__ import annotations

from virthost.api.host import interface_of

CAPS = {
    "nics": {"eth0": {"ipv4addrs": ["10.0.0.5/24"], "ipv6addrs": ["fd00::5/64"]}},
    "bridges": {"ovirtmgmt": {"ipv4addrs": ["192.168.1.10/24"], "ipv6addrs": []}},
    "vlans": {},
    "bondings": {},
}


def test_interface_of_the_client_facing_address() -> None:
    assert interface_of(CAPS, "10.0.0.5") == "eth0"
    assert interface_of(CAPS, "fd00::5") == "eth0"
    assert interface_of(CAPS, "192.168.1.10") == "ovirtmgmt"
    assert interface_of(CAPS, "127.0.0.1") == "lo"
    assert interface_of(CAPS, "::1") == "lo"
    assert interface_of(CAPS, "10.9.9.9") == ""
    assert interface_of(CAPS, "") == ""
