"""VDSM's ``ovirt-vm`` domain metadata: a typed model that round-trips what the engine wrote.

libvirt is the source of truth about running VMs, so everything a VM needs after a daemon
restart (drive volume IDs and chains, lease offsets, resume behaviour, start time...) lives in
the domain's ``<metadata>`` as one element ``<ovirt-vm:vm>`` in namespace
``http://ovirt.org/vm/1.0``. Its format is VDSM's:

* flat key/value children, ``<ovirt-vm:startTime type="float">1521453447.17</...>``, where
  ``type`` is ``int``, ``float`` or ``bool`` (written ``True``/``False``) and absent for strings;
* ``<ovirt-vm:custom>`` holding the VM's custom properties as key/value children;
* one ``<ovirt-vm:device>`` per device, keyed by attributes (``mac_address=`` for NICs,
  ``devtype=``/``name=`` for disks and others) with nested values (``domainID``, ``imageID``,
  ``volumeChain/volumeChainNode``, ``specParams``...), kept here as a generic tree.

The keys virthost acts on are typed fields of :class:`VmMetadata`; every other key goes to
``extra`` so that reading and writing back loses nothing. Output is canonical (plain keys in
name order, then devices, then ``custom``), which is also how VDSM and the engine order them,
so the engine's documents come back element for element. A known key that was absent stays
absent unless its value changes from the default.

The ``ovirt-tune`` element and any other metadata are not touched.

``metadata_xml`` is for ``virDomainSetMetadata(VIR_DOMAIN_METADATA_ELEMENT, xml, "ovirt-vm",
"http://ovirt.org/vm/1.0")``: libvirt wants the element *without* a namespace (it puts its own
on every element and fails when the text declares the prefix itself), and ``virDomainGetMetadata``
gives it back that way; :func:`parse_metadata_xml` reads either form.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from virthost.common import errors
from virthost.virt.domxml import xmlutil
from virthost.virt.domxml.xmlutil import OVIRT_VM_NS

METADATA_KEY = xmlutil.OVIRT_VM_PREFIX  # the prefix libvirt's setMetadata wants
METADATA_URI = OVIRT_VM_NS
VM_TAG = f"{{{OVIRT_VM_NS}}}vm"

ResumeBehavior = Literal["auto_resume", "leave_paused", "kill"]
RESUME_BEHAVIORS: tuple[str, ...] = get_args(ResumeBehavior)
MetadataScalar = str | int | float | bool

# Known keys: (element name, field name, default).
_KNOWN: tuple[tuple[str, str, object], ...] = (
    ("launchPaused", "launch_paused", False),
    ("resumeBehavior", "resume_behavior", "auto_resume"),
    ("destroy_on_reboot", "destroy_on_reboot", False),
    ("startTime", "start_time", None),
    ("memGuaranteedSize", "mem_guaranteed_mib", None),
)
_CUSTOM = "custom"
_DEVICE = "device"
_RESERVED = frozenset({_CUSTOM, _DEVICE, *(key for key, _, _ in _KNOWN)})


@dataclass
class MetadataNode:
    """One nested metadata element: a typed leaf value, or children (``volumeChain``)."""

    tag: str
    value: MetadataScalar | None = None
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[MetadataNode] = field(default_factory=list)

    def child(self, tag: str) -> MetadataNode | None:
        return next((c for c in self.children if c.tag == tag), None)

    def get(self, tag: str) -> MetadataScalar | None:
        """The value of the first child named ``tag``."""
        found = self.child(tag)
        return None if found is None else found.value


@dataclass
class DeviceMetadata:
    """``<ovirt-vm:device mac_address=...>`` or ``devtype=... name=...`` and its values."""

    attrs: dict[str, str] = field(default_factory=dict)
    values: list[MetadataNode] = field(default_factory=list)

    def child(self, tag: str) -> MetadataNode | None:
        return next((c for c in self.values if c.tag == tag), None)

    def get(self, tag: str) -> MetadataScalar | None:
        found = self.child(tag)
        return None if found is None else found.value

    def volume_chain(self) -> list[MetadataNode]:
        """The ``volumeChainNode`` entries (each with domainID, imageID, volumeID, path...)."""
        chain = self.child("volumeChain")
        return [] if chain is None else [n for n in chain.children if n.tag == "volumeChainNode"]


@dataclass
class VmMetadata:
    """The typed content of ``<ovirt-vm:vm>``. ``extra`` holds every other key.

    ``extra`` values are ``str``/``int``/``float``/``bool`` for plain keys (written with the
    matching ``type=``) or :class:`MetadataNode` for nested ones.
    """

    launch_paused: bool = False
    resume_behavior: ResumeBehavior = "auto_resume"
    destroy_on_reboot: bool = False
    start_time: float | None = None
    mem_guaranteed_mib: int | None = None
    custom: dict[str, str] = field(default_factory=dict)
    devices: list[DeviceMetadata] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    # Known keys the source document had, so that they are written back even at default values.
    _present: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    def device(self, **attrs: str) -> DeviceMetadata | None:
        """The first device whose attributes include ``attrs`` (``devtype="disk", name="sda"``)."""
        for dev in self.devices:
            if all(dev.attrs.get(k) == v for k, v in attrs.items()):
                return dev
        return None

    def nic_device(self, mac_address: str) -> DeviceMetadata | None:
        """The NIC device for ``mac_address`` (compared case-insensitively)."""
        mac = mac_address.lower()
        for dev in self.devices:
            if dev.attrs.get("mac_address", "").lower() == mac:
                return dev
        return None


# --- reading ---------------------------------------------------------------------------------


def find_vm_element(domain_root: ET.Element) -> ET.Element | None:
    return domain_root.find(f"metadata/{VM_TAG}")


def read_metadata(domain_root: ET.Element) -> VmMetadata:
    """The ``ovirt-vm`` metadata of a ``<domain>``; an empty model when there is none.

    Malformed metadata (a ``type="int"`` that is no integer, an unknown ``resumeBehavior``)
    raises :class:`errors.CannotCreateVM`.
    """
    element = find_vm_element(domain_root)
    return VmMetadata() if element is None else _read_vm(element)


def parse_metadata_xml(text: str) -> VmMetadata:
    """The model from ``<vm>...</vm>`` as ``virDomainGetMetadata`` returns it (or namespaced)."""
    element = xmlutil.parse(text, "ovirt-vm metadata")
    if _key(element) != "vm":
        raise errors.CannotCreateVM(f"ovirt-vm metadata: root is <{element.tag}>, not <vm>")
    return _read_vm(element)


def _key(element: ET.Element) -> str:
    """The local name of a metadata element, which must be in our namespace or in none."""
    uri, name = xmlutil.local_name(element.tag)
    if uri not in (None, OVIRT_VM_NS):
        raise errors.CannotCreateVM(f"ovirt-vm metadata: unexpected element {element.tag}")
    return name


def _read_vm(element: ET.Element) -> VmMetadata:
    values: dict[str, Any] = {}
    present: set[str] = set()
    custom: dict[str, str] = {}
    devices: list[DeviceMetadata] = []
    extra: dict[str, Any] = {}
    known = {key: (attr, default) for key, attr, default in _KNOWN}
    for child in element:
        key = _key(child)
        if key == _DEVICE:
            devices.append(DeviceMetadata(dict(child.attrib), [_read_node(c) for c in child]))
        elif key == _CUSTOM:
            custom.update(_read_custom(child))
        elif key in known:
            attr, default = known[key]
            if key in present:
                raise errors.CannotCreateVM(f"ovirt-vm metadata: {key} appears twice")
            values[attr] = _known_value(key, _read_node(child), default)
            present.add(key)
        else:
            if key in extra:
                raise errors.CannotCreateVM(f"ovirt-vm metadata: {key} appears twice")
            node = _read_node(child)
            plain = not node.children and not node.attrs
            extra[key] = ("" if node.value is None else node.value) if plain else node
    return VmMetadata(
        **values,
        custom=custom,
        devices=devices,
        extra=extra,
        _present=frozenset(present),
    )


def _read_node(element: ET.Element) -> MetadataNode:
    attrs = dict(element.attrib)
    value_type = attrs.pop("type", None)
    children = [_read_node(c) for c in element]
    if children:
        return MetadataNode(_key(element), None, attrs, children)
    return MetadataNode(_key(element), _typed(element, value_type), attrs)


def _typed(element: ET.Element, value_type: str | None) -> MetadataScalar | None:
    text = element.text
    if value_type is None:
        return text
    where = f"ovirt-vm metadata: {_key(element)}"
    try:
        if value_type == "int":
            return int((text or "").strip())
        if value_type == "float":
            return float((text or "").strip())
        if value_type == "bool":
            return _bool(text)
    except ValueError:
        raise errors.CannotCreateVM(f"{where}={text!r} is not a valid {value_type}") from None
    raise errors.CannotCreateVM(f"{where} has unknown type {value_type!r}")


def _bool(text: str | None) -> bool:
    lowered = (text or "").strip().lower()
    if lowered not in ("true", "false"):
        raise ValueError(text)
    return lowered == "true"


def _known_value(key: str, node: MetadataNode, default: object) -> Any:
    value = node.value
    where = f"ovirt-vm metadata: {key}={value!r}"
    try:
        if isinstance(default, bool):
            return value if isinstance(value, bool) else _bool(str(value))
        if key == "resumeBehavior":
            if value not in RESUME_BEHAVIORS:
                raise ValueError(value)
            return value
        if key == "startTime":
            return float(value) if value is not None else None
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        raise errors.CannotCreateVM(f"{where} is not valid") from None


def _read_custom(element: ET.Element) -> dict[str, str]:
    custom: dict[str, str] = {}
    for child in element:
        if len(child):
            raise errors.CannotCreateVM(f"ovirt-vm metadata: custom {_key(child)} is not text")
        custom[_key(child)] = child.text or ""
    return custom


# --- writing ---------------------------------------------------------------------------------


def write_metadata(domain_root: ET.Element, metadata: VmMetadata) -> None:
    """Replace (or add) ``<ovirt-vm:vm>`` in ``domain_root``'s ``<metadata>``; keep the rest."""
    new = build_element(metadata, namespaced=True)
    ET.indent(new, space="  ", level=2)
    container = domain_root.find("metadata")
    if container is None:
        container = ET.Element("metadata")
        container.append(new)
        xmlutil.insert_child(domain_root, _metadata_position(domain_root), container)
        return
    old = container.find(VM_TAG)
    if old is None:
        xmlutil.insert_child(container, len(container), new)
    else:
        xmlutil.replace_child(container, old, new)


def metadata_xml(metadata: VmMetadata) -> str:
    """``<vm>...</vm>`` without namespace, as ``virDomainSetMetadata`` wants it."""
    element = build_element(metadata, namespaced=False)
    ET.indent(element, space="  ")
    return xmlutil.tostring(element)


def build_element(metadata: VmMetadata, *, namespaced: bool = True) -> ET.Element:
    """The ``vm`` element for ``metadata``; InvalidParameter for keys or values XML can't hold."""

    def tag(name: str) -> str:
        return f"{{{OVIRT_VM_NS}}}{name}" if namespaced else name

    root = ET.Element(tag("vm"))
    plain: dict[str, MetadataScalar | MetadataNode] = {}
    for key, attr, default in _KNOWN:
        value = getattr(metadata, attr)
        if value is None or (value == default and key not in metadata._present):
            continue
        if key == "launchPaused":
            value = "true" if value else "false"  # the engine's spelling: untyped text
        elif key == "resumeBehavior" and value not in RESUME_BEHAVIORS:
            raise errors.InvalidParameter(f"resumeBehavior={value!r}", param="resumeBehavior")
        plain[key] = value
    for key, value in metadata.extra.items():
        xmlutil.check_name(key, "metadata key")
        if key in _RESERVED:
            raise errors.InvalidParameter(f"metadata key {key!r} is reserved", param=key)
        plain[key] = value
    for key in sorted(plain):
        value = plain[key]
        if isinstance(value, MetadataNode):
            _append_node(root, MetadataNode(key, value.value, value.attrs, value.children), tag)
        else:
            _append_node(root, MetadataNode(key, value), tag)
    for device in metadata.devices:
        element = ET.SubElement(root, tag(_DEVICE), _checked_attrs(device.attrs, "device"))
        for node in device.values:
            _append_node(element, node, tag)
    if metadata.custom:
        custom = ET.SubElement(root, tag(_CUSTOM))
        for key, value in metadata.custom.items():
            child = ET.SubElement(custom, tag(xmlutil.check_name(key, "custom key")))
            child.text = xmlutil.check_text(value, f"custom {key}")
    return root


def _append_node(parent: ET.Element, node: MetadataNode, tag: Callable[[str], str]) -> None:
    name = xmlutil.check_name(node.tag, "metadata key")
    attrs = _checked_attrs(node.attrs, name)
    if "type" in attrs:
        raise errors.InvalidParameter(f"metadata {name}: 'type' is not a free attribute")
    value = node.value
    text: str | None
    if isinstance(value, bool):
        attrs["type"], text = "bool", str(value)
    elif isinstance(value, int):
        attrs["type"], text = "int", str(value)
    elif isinstance(value, float):
        attrs["type"], text = "float", repr(value)
    elif isinstance(value, str) or value is None:
        text = None if value is None else xmlutil.check_text(value, f"metadata {name}")
    else:
        raise errors.InvalidParameter(
            f"metadata {name}: unsupported value type {type(value).__name__}", param=name
        )
    if node.children and text is not None:
        raise errors.InvalidParameter(f"metadata {name}: both a value and children", param=name)
    element = ET.SubElement(parent, tag(name), attrs)
    element.text = text
    for child in node.children:
        _append_node(element, child, tag)


def _checked_attrs(attrs: dict[str, str], where: str) -> dict[str, str]:
    return {
        xmlutil.check_name(k, f"{where} attribute"): xmlutil.check_text(v, f"{where} {k}")
        for k, v in attrs.items()
    }


def _metadata_position(domain_root: ET.Element) -> int:
    """Just after name/uuid/title/description, where libvirt itself writes ``<metadata>``."""
    position = 0
    for index, child in enumerate(domain_root):
        if child.tag in ("name", "uuid", "genid", "title", "description"):
            position = index + 1
    return position
