"""No value from the wire can add markup: hostile values are refused or come back verbatim.

Each test that lets a hostile string through checks both ways: the parsed result holds exactly
the string given, and the document has no element or attribute the builder did not make.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

import pytest

from virthost.common import errors
from virthost.virt.domxml import (
    VmMetadata,
    build_from_params,
    metadata_xml,
    parse_domain,
    parse_metadata_xml,
    prepare_for_host,
)

VM_ID = "6a5b4c3d-2e1f-4a0b-9c8d-7e6f5a4b3c2d"
HOSTILE = [
    "</cmdline><evil/>",
    "a<b&c>d",
    "\"' onload='x",
    "]]><![CDATA[x",
    "&amp;&lt;",
    "<!-- c -->",
    "<?pi x?>",
    "x\u00e9\u4e2d\U0001f600",
]


def params(**changes: Any) -> dict[str, Any]:
    return {"vmId": VM_ID, "vmName": "victim", **changes}


def tags(xml: str) -> list[str]:
    return [element.tag for element in ET.fromstring(xml).iter()]


@pytest.mark.parametrize(
    "name",
    ["a<b", "a&b", 'a"b', "a'b", "x</name><evil/>", "../../etc", "a\x00b", "a b", "é"],
)
def test_hostile_vm_names_are_refused(name: str) -> None:
    with pytest.raises(errors.InvalidParameter) as caught:
        build_from_params(params(vmName=name))
    assert caught.value.context.get("param") == "vmName"


@pytest.mark.parametrize(
    "path",
    [
        "/images/../../etc/shadow",
        "/images/..",
        "../images/a",
        "images/a",
        "/images/./a",
        "//images/a",
        "/images/a\x00.img",
        "/images/a\n<evil/>",
        "",
        "/",
    ],
)
@pytest.mark.parametrize("key", ["path", "kernel", "consoleLog", "emulator"])
def test_paths_escaping_or_odd_are_refused(key: str, path: str) -> None:
    if key == "path":
        changes: dict[str, Any] = {"drives": [{"path": path}]}
        param = "drives[0].path"
    else:
        changes = {key: path}
        param = key
    with pytest.raises(errors.InvalidParameter) as caught:
        build_from_params(params(**changes))
    assert caught.value.context.get("param") == param


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_text_is_escaped_not_interpreted(
    hostile: str, define: Callable[[str], Any]
) -> None:
    path = "/images/" + hostile.replace("/", "_")
    dom = build_from_params(
        params(
            kernel="/boot/vmlinuz",
            kernelArgs=hostile,
            drives=[{"path": path}],
            custom={"note": hostile},
        )
    )
    xml = prepare_for_host(dom, domain_type="qemu").to_xml()
    back = parse_domain(xml)
    assert back.os.cmdline == hostile
    assert back.devices.disks[0].path == path
    assert back.metadata.custom == {"note": hostile}
    assert "evil" not in tags(xml) and "{http://ovirt.org/vm/1.0}evil" not in tags(xml)
    assert len(ET.fromstring(xml).findall("devices/disk")) == 1
    # and libvirt reads the same values back
    described = parse_domain(define(xml).XMLDesc(0))
    assert described.os.cmdline == hostile
    assert described.devices.disks[0].path == path
    assert described.metadata.custom == {"note": hostile}


@pytest.mark.parametrize("hostile", HOSTILE)
def test_metadata_values_are_escaped(hostile: str) -> None:
    md = VmMetadata(custom={"k": hostile}, extra={"clusterVersion": hostile})
    text = metadata_xml(md)
    assert [e.tag for e in ET.fromstring(text).iter()] == ["vm", "clusterVersion", "custom", "k"]
    assert parse_metadata_xml(text) == md


@pytest.mark.parametrize("key", ["a><evil", "a b", 'a="1"', "x/", "1a", "-a", ""])
def test_metadata_keys_that_are_not_names_are_refused(key: str) -> None:
    with pytest.raises(errors.InvalidParameter):
        metadata_xml(VmMetadata(custom={key: "v"}))
    with pytest.raises(errors.InvalidParameter):
        metadata_xml(VmMetadata(extra={key: "v"}))
    with pytest.raises(errors.InvalidParameter):
        build_from_params(params(custom={key: "v"}))


@pytest.mark.parametrize(
    "value",
    ["bell\x07", "nul\x00", "esc\x1b[0m", "\ud800"],
)
def test_characters_xml_cannot_carry_are_refused(value: str) -> None:
    with pytest.raises(errors.InvalidParameter):
        metadata_xml(VmMetadata(custom={"k": value}))
    with pytest.raises(errors.InvalidParameter):
        build_from_params(params(custom={"k": value}))


@pytest.mark.parametrize(
    "document",
    [
        '<!DOCTYPE domain [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        f"<domain><name>&x;</name><uuid>{VM_ID}</uuid></domain>",
        '<!DOCTYPE domain [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
        f"<domain><name>&b;</name><uuid>{VM_ID}</uuid></domain>",
    ],
)
def test_engine_xml_with_entities_is_refused(document: str) -> None:
    with pytest.raises(errors.CannotCreateVM, match="DTD"):
        parse_domain(document)
    with pytest.raises(errors.CannotCreateVM, match="DTD"):
        parse_metadata_xml('<!DOCTYPE vm [<!ENTITY a "b">]><vm>&a;</vm>')
