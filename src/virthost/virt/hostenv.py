"""What a VM from an engine expects to find on the host, set up on demand.

An engine's domain XML refers to host objects VDSM maintains: the network filter
``vdsm-no-mac-spoofing`` (defined when the daemon connects to libvirt) and, for a display
listening on a logical network, the libvirt network ``vdsm-<net>`` over the bridge ``<net>``
(defined when a VM needs it and the bridge exists). These run inside time-boxed libvirt
calls; they only add what is missing and never change what exists.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from typing import Any

import libvirt

log = logging.getLogger("virthost.virt.hostenv")

NO_MAC_SPOOFING = "vdsm-no-mac-spoofing"
NETWORK_PREFIX = "vdsm-"


def ensure_nwfilter(conn: Any) -> None:
    try:
        conn.nwfilterLookupByName(NO_MAC_SPOOFING)
        return
    except libvirt.libvirtError:
        pass
    root = ET.Element("filter", name=NO_MAC_SPOOFING, chain="root")
    ET.SubElement(root, "filterref", filter="no-mac-spoofing")
    ET.SubElement(root, "filterref", filter="no-arp-mac-spoofing")
    try:
        conn.nwfilterDefineXML(ET.tostring(root, encoding="unicode"))
        log.info("network filter %s defined", NO_MAC_SPOOFING)
    except libvirt.libvirtError as e:
        log.warning("cannot define the network filter %s: %s", NO_MAC_SPOOFING, e)


def display_networks(domain_xml: str) -> list[str]:
    """libvirt networks the displays of a domain listen on (``<listen type='network'>``)."""
    root = ET.fromstring(domain_xml)
    names = {
        listen.get("network", "")
        for listen in root.findall("devices/graphics/listen")
        if listen.get("type") == "network"
    }
    return sorted(n for n in names if n)


def ensure_network(conn: Any, name: str) -> None:
    """Define and start ``vdsm-<bridge>`` when the bridge exists and the network does not."""
    try:
        network = conn.networkLookupByName(name)
    except libvirt.libvirtError:
        network = None
    if network is not None:
        if not network.isActive():
            network.create()
        return
    if not name.startswith(NETWORK_PREFIX):
        return  # not one of ours: libvirt's own error will say what is missing
    bridge = name[len(NETWORK_PREFIX) :]
    root = ET.Element("network")
    ET.SubElement(root, "name").text = name
    ET.SubElement(root, "forward", mode="bridge")
    ET.SubElement(root, "bridge", name=bridge)
    network = conn.networkDefineXML(ET.tostring(root, encoding="unicode"))
    network.create()
    log.info("libvirt network %s defined over bridge %s", name, bridge)


def security_models(conn: Any) -> frozenset[str]:
    """The security drivers libvirt runs on this host (dac, selinux, apparmor, none...)."""
    root = ET.fromstring(conn.getCapabilities())
    return frozenset(
        model.text.strip()
        for model in root.findall("host/secmodel/model")
        if model.text and model.text.strip()
    )
