"""A parsed libvirt domain: the full ElementTree plus typed views of the parts virthost uses.

An engine's domain XML carries far more than virthost understands (NUMA tuning, seclabels,
sysinfo, controller addresses, vendor metadata), and all of it must reach libvirt unchanged.
So :class:`DomainXml` keeps the whole tree and is a *view* over it: properties read from and
write to the tree, :attr:`DomainXml.devices` and :attr:`DomainXml.os` are snapshots read on
access, and :meth:`DomainXml.to_xml` serialises the tree. Unknown elements survive because
nothing ever rebuilds the document.

The one piece of state held beside the tree is :attr:`DomainXml.metadata`, the typed
``ovirt-vm`` metadata, because callers edit it as a model; :meth:`to_xml` writes it back only
when it differs from what the tree holds, so an untouched document keeps its exact metadata.

:func:`parse_domain` is the gate for XML from the wire: malformed XML, a missing or invalid
``<uuid>``, a missing ``<name>`` and malformed numbers or metadata are refused with
:class:`errors.CannotCreateVM` (code 9) saying what is wrong.
"""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from virthost.common import errors, validate
from virthost.virt.domxml import xmlutil
from virthost.virt.domxml.devices import Devices, read_devices
from virthost.virt.domxml.metadata import (
    VmMetadata,
    find_vm_element,
    read_metadata,
    write_metadata,
)
from virthost.virt.domxml.params import absolute_path
from virthost.virt.domxml.xmlutil import from_element, xml_field


@dataclass(frozen=True, kw_only=True)
class OsInfo:
    """``<os>``: machine type and, for direct kernel boot, kernel, initrd and command line."""

    type: str | None = xml_field("type")
    arch: str | None = xml_field("type/@arch")
    machine: str | None = xml_field("type/@machine")
    loader: str | None = xml_field("loader")
    kernel: str | None = xml_field("kernel")
    initrd: str | None = xml_field("initrd")
    cmdline: str | None = xml_field("cmdline")


class DomainXml:
    """A domain document: the tree (``root``), typed views and the ``ovirt-vm`` metadata."""

    def __init__(self, root: ET.Element) -> None:
        """Wrap ``root`` (taking ownership, not copying); CannotCreateVM if it is not usable."""
        _check(root)
        self._root = root
        self.metadata: VmMetadata = read_metadata(root)

    @property
    def root(self) -> ET.Element:
        """The live tree, for edits the typed properties do not cover."""
        return self._root

    @property
    def uuid(self) -> str:
        """The ``<uuid>`` in canonical lowercase form."""
        return validate.uuid(_text(self._root, "uuid"), "uuid")

    @property
    def name(self) -> str:
        return _text(self._root, "name")

    @name.setter
    def name(self, value: str) -> None:
        if not xmlutil.check_text(value, "name").strip():
            raise errors.InvalidParameter("name: empty", param="name")
        xmlutil.ensure_child(self._root, "name").text = value

    @property
    def domain_type(self) -> str | None:
        """``<domain type=>``: ``kvm``, ``qemu`` (TCG)..."""
        return self._root.get("type")

    @domain_type.setter
    def domain_type(self, value: str) -> None:
        self._root.set("type", xmlutil.check_name(value, "domain_type"))

    @property
    def memory_kib(self) -> int | None:
        """``<memory>``, the maximum memory at boot, in KiB whatever the unit."""
        return xmlutil.memory_kib(self._root.find("memory"))

    @memory_kib.setter
    def memory_kib(self, value: int) -> None:
        _set_kib(self._root, "memory", value)

    @property
    def current_memory_kib(self) -> int | None:
        """``<currentMemory>`` (the balloon target at boot); None when absent."""
        return xmlutil.memory_kib(self._root.find("currentMemory"))

    @current_memory_kib.setter
    def current_memory_kib(self, value: int) -> None:
        _set_kib(self._root, "currentMemory", value)

    @property
    def vcpus(self) -> int:
        """vCPUs online at boot: ``<vcpu current=>`` or else the ``<vcpu>`` count (default 1)."""
        vcpu = self._root.find("vcpu")
        if vcpu is None:
            return 1
        return xmlutil.to_int(vcpu.get("current")) or xmlutil.to_int(vcpu.text) or 1

    @property
    def max_vcpus(self) -> int:
        """``<vcpu>``'s count: the most vCPUs the guest can have after hot-plug."""
        vcpu = self._root.find("vcpu")
        return 1 if vcpu is None else xmlutil.to_int(vcpu.text) or 1

    @property
    def os(self) -> OsInfo:
        os_element = self._root.find("os")
        return OsInfo() if os_element is None else from_element(OsInfo, os_element)

    @property
    def devices(self) -> Devices:
        return read_devices(self._root.find("devices"))

    def set_disk_source(self, target_dev: str, path: str, disk_type: str | None = None) -> None:
        """Point the disk at ``target_dev`` (``vda``) to ``path`` (after storage preparation).

        ``disk_type`` ``file`` or ``block`` changes the disk's type too (a volume can be a file
        on one storage domain and a logical volume on another); otherwise the type stays. The
        rest of ``<source>`` (seclabels, ``startupPolicy``) is kept. The disk is found by
        comparing values, never by an XPath built from them. InvalidParameter for an unknown
        target, a path that is not absolute and normalised, or another type.
        """
        checked = absolute_path(path, "path")
        disk = next(
            (d for d in self._root.iterfind("devices/disk") if _target_dev(d) == target_dev), None
        )
        if disk is None:
            raise errors.InvalidParameter(f"no disk with target {target_dev!r}", param="target_dev")
        kind = disk.get("type", "file")
        if kind not in ("file", "block"):
            raise errors.InvalidParameter(
                f"disk {target_dev} is of type {kind!r}, not file or block", param="disk_type"
            )
        if disk_type is not None:
            if disk_type not in ("file", "block"):
                raise errors.InvalidParameter(
                    f"disk_type={disk_type!r}: must be file or block", param="disk_type"
                )
            disk.set("type", disk_type)
            kind = disk_type
        source = disk.find("source")
        if source is None:
            source = ET.Element("source")
            xmlutil.insert_child(disk, 0, source)
        for attr in ("file", "dev"):
            source.attrib.pop(attr, None)
        source.set("file" if kind == "file" else "dev", checked)

    def to_xml(self) -> str:
        """The document with every edit applied (including to :attr:`metadata`)."""
        self._sync_metadata()
        return xmlutil.tostring(self._root)

    def copy(self) -> DomainXml:
        """An independent deep copy (tree and metadata)."""
        self._sync_metadata()
        return DomainXml(copy.deepcopy(self._root))

    def _sync_metadata(self) -> None:
        present = find_vm_element(self._root) is not None
        if present and read_metadata(self._root) == self.metadata:
            return
        if present or self.metadata != VmMetadata():
            write_metadata(self._root, self.metadata)

    def __repr__(self) -> str:
        return f"DomainXml(uuid={self.uuid!r}, name={self.name!r})"


def parse_domain(xml: str) -> DomainXml:
    """The domain in ``xml``; :class:`errors.CannotCreateVM` when it cannot be a VM's."""
    return DomainXml(xmlutil.parse(xml, "domain XML"))


def _check(root: ET.Element) -> None:
    if root.tag != "domain":
        raise errors.CannotCreateVM(f"domain XML: root element is <{root.tag}>, not <domain>")
    uuid_element = root.find("uuid")
    if uuid_element is None or not (uuid_element.text or "").strip():
        raise errors.CannotCreateVM("domain XML: missing <uuid>")
    try:
        validate.uuid((uuid_element.text or "").strip(), "uuid")
    except errors.InvalidParameter as e:
        raise errors.CannotCreateVM(f"domain XML: invalid <uuid>: {e.detail}") from None
    name = root.find("name")
    if name is None or not (name.text or "").strip():
        raise errors.CannotCreateVM("domain XML: missing <name>")
    for tag in ("memory", "currentMemory", "maxMemory"):
        element = root.find(tag)
        if element is not None and xmlutil.memory_kib(element) is None:
            raise errors.CannotCreateVM(f"domain XML: <{tag}> is not a valid size")
    vcpu = root.find("vcpu")
    if vcpu is not None:
        counts = [vcpu.text, *([vcpu.get("current")] if "current" in vcpu.attrib else [])]
        if any((xmlutil.to_int(c) or 0) < 1 for c in counts):
            raise errors.CannotCreateVM("domain XML: <vcpu> is not a positive count")


def _target_dev(disk: ET.Element) -> str | None:
    target = disk.find("target")
    return None if target is None else target.get("dev")


def _text(root: ET.Element, tag: str) -> str:
    element = root.find(tag)
    return "" if element is None else (element.text or "").strip()


def _set_kib(root: ET.Element, tag: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise errors.InvalidParameter(f"{tag}={value!r}: not a positive size in KiB", param=tag)
    element = xmlutil.ensure_child(root, tag)
    element.text = str(value)
    element.set("unit", "KiB")
