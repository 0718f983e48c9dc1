"""ElementTree plumbing shared by the domain XML modules: parsing, serialising, safe values.

Domain XML arrives from the wire, so three rules hold everywhere in this package:

* Parsing refuses document type declarations. libvirt's domain XML never has one, and a DTD is
  how entity-expansion and external-entity tricks get in.
* Values reach XML only through ElementTree, which escapes text and attribute values. It does
  *not* check element or attribute names, nor characters XML 1.0 forbids (a NUL in text makes a
  document libvirt rejects), so :func:`check_name` and :func:`check_text` exist for values that
  become names or text and did not come out of a parsed document.
* The oVirt metadata namespaces get their usual prefixes (``ovirt-vm``, ``ovirt-tune``).
  ElementTree keeps its prefix table module-wide; registering the two oVirt prefixes there is
  idempotent and only changes how those two URIs are spelled in output.

Reading helpers never raise on odd values: a number libvirt would refuse reads as ``None``, so
looking at a parsed domain cannot fail after :func:`virthost.virt.domxml.model.parse_domain`
accepted it.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from virthost.common import errors

OVIRT_VM_NS = "http://ovirt.org/vm/1.0"
OVIRT_VM_PREFIX = "ovirt-vm"
OVIRT_TUNE_NS = "http://ovirt.org/vm/tune/1.0"
OVIRT_TUNE_PREFIX = "ovirt-tune"

ET.register_namespace(OVIRT_VM_PREFIX, OVIRT_VM_NS)
ET.register_namespace(OVIRT_TUNE_PREFIX, OVIRT_TUNE_NS)

# Element and attribute names we write: an ASCII subset of XML's NCName (no ':').
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9._-]*")
# Characters XML 1.0 does not allow anywhere in a document.
_NOT_XML_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_DTD_MARKERS = ("<!DOCTYPE", "<!ENTITY")


def parse(text: str, what: str) -> ET.Element:
    """The root element of ``text``; :class:`errors.CannotCreateVM` names ``what`` otherwise."""
    if not isinstance(text, str):
        raise errors.CannotCreateVM(f"{what} must be a string, not {type(text).__name__}")
    if any(marker in text for marker in _DTD_MARKERS):
        raise errors.CannotCreateVM(f"{what} must not contain a DTD or entity declarations")
    try:
        return ET.fromstring(text)
    except ET.ParseError as e:
        raise errors.CannotCreateVM(f"malformed {what}: {e}") from None


def tostring(element: ET.Element) -> str:
    return ET.tostring(element, encoding="unicode")


def check_name(value: object, param: str) -> str:
    """``value`` if it can be an element or attribute name we write, else InvalidParameter."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise errors.InvalidParameter(
            f"{param}={value!r}: not a valid XML name (letters, digits, '._-', "
            "not starting with a digit, '.' or '-')",
            param=param,
        )
    return value


def check_text(value: object, param: str) -> str:
    """``value`` if it is a string XML can carry (ElementTree escapes the rest)."""
    if not isinstance(value, str):
        raise errors.InvalidParameter(f"{param}: not a string", param=param)
    if _NOT_XML_CHAR.search(value):
        raise errors.InvalidParameter(f"{param}: contains characters XML cannot carry", param=param)
    return value


def local_name(tag: str) -> tuple[str | None, str]:
    """``(namespace URI or None, local name)`` of an ElementTree tag."""
    if tag.startswith("{"):
        uri, _, name = tag[1:].partition("}")
        return uri, name
    return None, tag


def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    """Append ``<tag attrs>text</tag>`` to ``parent``."""
    child = ET.SubElement(parent, tag, attrs)
    if text is not None:
        child.text = text
    return child


def ensure_child(parent: ET.Element, tag: str) -> ET.Element:
    """The first ``tag`` child of ``parent``, appended when there is none."""
    child = parent.find(tag)
    if child is None:
        child = ET.Element(tag)
        insert_child(parent, len(parent), child)
    return child


def insert_child(parent: ET.Element, index: int, child: ET.Element) -> None:
    """Insert ``child`` at ``index``, indented like its siblings when they are indented.

    Engine documents are pretty-printed; an added element should not break that (people read
    these documents in logs), and re-indenting the whole tree would rewrite every line.
    """
    layout = _layout(parent)
    existing = len(parent)
    parent.insert(index, child)
    if layout is None:
        return
    inner, outer, step = layout
    if index >= existing:
        parent[existing - 1].tail = inner
        child.tail = outer
    else:
        child.tail = inner
    _indent(child, inner, step)


def replace_child(parent: ET.Element, old: ET.Element, new: ET.Element) -> None:
    """Put ``new`` where ``old`` is, with ``old``'s surrounding whitespace."""
    layout = _layout(parent)
    new.tail = old.tail
    parent[list(parent).index(old)] = new
    if layout is not None:
        _indent(new, layout[0], layout[2])


def _layout(parent: ET.Element) -> tuple[str, str, str] | None:
    """(indent of children, indent of the closing tag, one level) when ``parent`` is pretty."""
    if not len(parent) or not parent.text or parent.text.strip() or "\n" not in parent.text:
        return None
    inner = parent.text
    outer = parent[-1].tail or ""
    if outer.strip() or not inner.startswith(outer) or len(inner) == len(outer):
        return None
    return inner, outer, inner[len(outer) :]


def _indent(element: ET.Element, base: str, step: str) -> None:
    if not len(element):
        return
    if not (element.text or "").strip():
        element.text = base + step
    for child in element:
        _indent(child, base + step, step)
        if not (child.tail or "").strip():
            child.tail = base + step
    if not (element[-1].tail or "").strip():
        element[-1].tail = base


def to_int(text: str | None) -> int | None:
    """A decimal integer, or None for absent or malformed text."""
    if text is None:
        return None
    try:
        return int(text.strip(), 10)
    except ValueError:
        return None


def yes_no(text: str | None) -> bool | None:
    """libvirt's boolean attribute values ('yes'/'no', 'on'/'off'), None when absent or odd."""
    if text is None:
        return None
    return {"yes": True, "on": True, "no": False, "off": False}.get(text.strip().lower())


_DECIMAL = {"k": 1, "m": 2, "g": 3, "t": 4, "p": 5, "e": 6}


def memory_kib(element: ET.Element | None) -> int | None:
    """A libvirt scaled integer (``<memory unit='MiB'>512</memory>``) in KiB, rounded up.

    libvirt's default unit is KiB; units are ``b``/``bytes``, ``KB``, ``k``/``KiB``, ``MB``,
    ``M``/``MiB`` and so on up to exbibytes, the letter case-insensitively. None when absent or
    malformed.
    """
    if element is None:
        return None
    value = to_int(element.text)
    if value is None or value < 0:
        return None
    unit = (element.get("unit") or "KiB").strip().lower()
    if unit in ("b", "byte", "bytes"):
        factor = 1
    elif unit[:1] in _DECIMAL and unit[1:] in ("", "ib", "b"):
        power = _DECIMAL[unit[:1]]
        factor = 1000**power if unit[1:] == "b" else 1024**power
    else:
        return None
    return -(-value * factor // 1024)


# --- declarative mapping of elements to frozen dataclasses -------------------------------


@dataclass(frozen=True)
class XmlSpec:
    """Where a dataclass field lives under an element: the first path that yields a value.

    A path is ``"child/grandchild"`` (its text), ``"child/@attr"`` or ``"@attr"``. With
    ``present`` the field is True when the first path's element exists (``<readonly/>``).
    """

    paths: tuple[str, ...]
    convert: Callable[[str | None], Any] = lambda text: text
    present: bool = False


def xml_field(
    *paths: str, convert: Callable[[str | None], Any] | None = None, present: bool = False
) -> Any:
    """A dataclass field read from ``paths`` by :func:`from_element` (default None/False)."""
    spec = XmlSpec(paths, convert or (lambda text: text), present)
    return field(default=False if present else None, metadata={"xml": spec})


def _lookup(element: ET.Element, path: str) -> str | None:
    where, at, attr = path.rpartition("@")
    if not at:
        found = element.find(path)
        return None if found is None else (found.text or "")
    where = where.rstrip("/")
    node = element.find(where) if where else element
    return None if node is None else node.get(attr)


T = TypeVar("T")


def from_element(cls: type[T], element: ET.Element, **values: Any) -> T:
    """An instance of dataclass ``cls`` read from ``element`` through its ``xml_field`` specs.

    ``values`` give fields that have no spec (such as a serial port's element kind).
    """
    for f in fields(cls):  # type: ignore[arg-type]
        spec = f.metadata.get("xml")
        if spec is None:
            continue
        if spec.present:
            values[f.name] = element.find(spec.paths[0]) is not None
            continue
        value = None
        for path in spec.paths:
            value = spec.convert(_lookup(element, path))
            if value is not None:
                break
        values[f.name] = value
    return cls(**values)
