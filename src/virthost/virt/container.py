"""The VMs this daemon manages, by id."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from virthost.common import errors
from virthost.virt.vm import Vm


class VmContainer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._vms: dict[str, Vm] = {}

    def add(self, vm: Vm) -> None:
        with self._lock:
            if vm.id in self._vms:
                raise errors.VMExists(vm.id)
            self._vms[vm.id] = vm

    def get(self, vm_id: str) -> Vm:
        with self._lock:
            vm = self._vms.get(vm_id)
        if vm is None:
            raise errors.NoSuchVM(vm_id)
        return vm

    def find(self, vm_id: str) -> Vm | None:
        with self._lock:
            return self._vms.get(vm_id)

    def remove(self, vm_id: str) -> Vm | None:
        with self._lock:
            return self._vms.pop(vm_id, None)

    def all(self) -> list[Vm]:
        with self._lock:
            return list(self._vms.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._vms)

    def __iter__(self) -> Iterator[Vm]:
        return iter(self.all())
