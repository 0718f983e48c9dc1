"""Running a VM's hook point with its domain XML, custom properties and id."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from virthost.common import errors
from virthost.virt.vm import Vm

log = logging.getLogger("virthost.virt.hooks")


class DomxmlHooks(Protocol):
    def hooks(self, point: str) -> list[Any]: ...

    def run_json(
        self,
        point: str,
        data: Any,
        *,
        env: Any = ...,
        custom: Any = ...,
        vm_id: str | None = None,
        raise_errors: bool = True,
    ) -> Any: ...

    def run_domxml(
        self,
        point: str,
        domxml: str,
        *,
        env: Any = ...,
        custom: Any = ...,
        vm_id: str | None = None,
        raise_errors: bool = True,
    ) -> str: ...


def run_vm_hook(
    hooks: DomxmlHooks | None,
    point: str,
    vm: Vm,
    xml: str | None = None,
    *,
    raise_errors: bool,
) -> str:
    """Run ``point`` on ``xml`` (default: the VM's last known XML); return the hooks' XML.

    With ``raise_errors`` a failing chain raises HookError and stops the caller; without it
    (the after_* points) failures are only logged.
    """
    domxml = vm.domain_xml if xml is None else xml
    if hooks is None:
        return domxml
    try:
        return hooks.run_domxml(
            point, domxml, custom=vm.custom, vm_id=vm.id, raise_errors=raise_errors
        )
    except errors.VirtHostError as e:
        if raise_errors:
            raise
        log.warning("vm %s: %s hooks: %s", vm.id, point, e)
        return domxml
