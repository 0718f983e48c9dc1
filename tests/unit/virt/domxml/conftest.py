"""Fixtures for the domain XML tests: golden files, the engine vectors, libvirt's test driver.

Golden files live in ``data/``. When a change to the output is intended, regenerate them with

    VIRTHOST_REGEN_GOLDEN=1 venv/bin/python -m pytest tests/unit/virt/domxml

and review the diff before committing; without the variable a mismatch fails with a diff.

The engine vectors are read from ``../shared/vectors/vdsm-domain-xml`` relative to the project
root and never copied here; tests using them skip, saying where they looked, when it is absent.
``domain.xml`` there is a template whose ``<uuid>`` is ``{vm_uuid}`` (filled in here);
``disk_devices.xml`` is a list of ``<disk>`` elements, not a document.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).parent / "data"
PROJECT_ROOT = Path(__file__).resolve().parents[4]
VECTORS = PROJECT_ROOT.parent / "shared" / "vectors" / "vdsm-domain-xml"
DOMAIN_VECTORS = ("domain.xml", "domain_disk_file.xml", "vm_compat41.xml", "vm_hibernated.xml")
TEMPLATE_UUID = "338175a6-44e7-45d0-8321-2c6f2d5b3d6b"
REGENERATE = os.environ.get("VIRTHOST_REGEN_GOLDEN") == "1"


@dataclass(frozen=True)
class Vector:
    name: str
    text: str


def _vector_params() -> list[Any]:
    if not VECTORS.is_dir():
        reason = f"engine vectors not found at {VECTORS} (../shared/vectors from the project)"
        return [pytest.param(None, id="no-vectors", marks=pytest.mark.skip(reason=reason))]
    return [pytest.param(name, id=name) for name in DOMAIN_VECTORS]


@pytest.fixture(params=_vector_params())
def vector(request: pytest.FixtureRequest) -> Vector:
    """One engine domain XML vector (with the template's ``{vm_uuid}`` filled in)."""
    path = VECTORS / request.param
    if not path.is_file():
        pytest.skip(f"vector {path} is absent")
    return Vector(request.param, path.read_text().replace("{vm_uuid}", TEMPLATE_UUID))


@pytest.fixture
def disk_vectors() -> list[str]:
    """The ``<disk>`` elements of ``disk_devices.xml``, each as its own string."""
    path = VECTORS / "disk_devices.xml"
    if not path.is_file():
        pytest.skip(f"vector {path} is absent")
    return re.findall(r"(?s)<disk\b.*?</disk>", path.read_text())


@pytest.fixture
def golden() -> Callable[[str, str], None]:
    """``check(file name, actual text)`` against ``data/<file name>`` (see module docstring)."""

    def check(name: str, actual: str) -> None:
        path = DATA / name
        if not actual.endswith("\n"):
            actual += "\n"  # files end with a newline, as editors and hooks want
        if REGENERATE:
            path.write_text(actual)
            return
        if not path.exists():
            pytest.fail(f"golden file {path} missing; run with VIRTHOST_REGEN_GOLDEN=1")
        expected = path.read_text()
        if actual != expected:
            diff = "".join(
                difflib.unified_diff(
                    expected.splitlines(keepends=True),
                    actual.splitlines(keepends=True),
                    fromfile=f"data/{name}",
                    tofile="actual",
                )
            )
            pytest.fail(f"output differs from golden file data/{name}:\n{diff}")

    return check


@pytest.fixture
def test_conn() -> Iterator[Any]:
    """A connection to libvirt's in-process ``test:///default`` driver."""
    libvirt = pytest.importorskip("libvirt")
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    conn = libvirt.open("test:///default")
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture
def define(test_conn: Any) -> Iterator[Callable[[str], Any]]:
    """``define(xml)`` on the test driver; everything defined is undefined afterwards."""
    defined: list[Any] = []

    def define_xml(xml: str) -> Any:
        dom = test_conn.defineXML(xml)
        defined.append(dom)
        return dom

    yield define_xml
    for dom in defined:
        dom.undefine()
