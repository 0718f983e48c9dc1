"""Libvirt domain XML for virthost: parse, model, rewrite for this host, build from params.

The public face of the package:

* :func:`parse_domain` turns an engine's XML into a :class:`DomainXml` (the full tree plus typed
  views: memory, vCPUs, OS boot, disks, NICs, graphics, channels, balloon, consoles).
* :class:`VmMetadata` is VDSM's ``ovirt-vm`` metadata (:func:`read_metadata`,
  :func:`write_metadata`, :func:`metadata_xml` for ``virDomainSetMetadata``,
  :func:`parse_metadata_xml` for what ``virDomainGetMetadata`` returns).
* :func:`prepare_for_host` rewrites a domain for this host (kvm or TCG) before it is defined.
* :func:`build_from_params` builds a domain from VDSM-style simple parameters.

Nothing here talks to libvirt; the VM code does, with the strings these functions produce.
"""

from __future__ import annotations

from virthost.virt.domxml.devices import (
    GUEST_AGENT_CHANNEL,
    Balloon,
    Channel,
    CharDevice,
    Devices,
    Disk,
    Graphics,
    Interface,
)
from virthost.virt.domxml.metadata import (
    METADATA_KEY,
    METADATA_URI,
    DeviceMetadata,
    MetadataNode,
    ResumeBehavior,
    VmMetadata,
    metadata_xml,
    parse_metadata_xml,
    read_metadata,
    write_metadata,
)
from virthost.virt.domxml.model import DomainXml, OsInfo, parse_domain
from virthost.virt.domxml.prepare import prepare_for_host
from virthost.virt.domxml.simple import build_from_params

__all__ = [
    "GUEST_AGENT_CHANNEL",
    "METADATA_KEY",
    "METADATA_URI",
    "Balloon",
    "Channel",
    "CharDevice",
    "DeviceMetadata",
    "Devices",
    "Disk",
    "DomainXml",
    "Graphics",
    "Interface",
    "MetadataNode",
    "OsInfo",
    "ResumeBehavior",
    "VmMetadata",
    "build_from_params",
    "metadata_xml",
    "parse_domain",
    "parse_metadata_xml",
    "prepare_for_host",
    "read_metadata",
    "write_metadata",
]
