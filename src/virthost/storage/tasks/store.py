"""``TaskStore``: tasks persisted in a directory of the pool's master domain.

Why on the master domain: a task that changes shared storage (creates a volume, deletes an
image) must be finished or undone even if this host dies half way, and the host that finishes
or undoes it may be another one, the next SPM. So each task lives in
``<master domain>/master/tasks/<taskUUID>/`` (see :mod:`virthost.storage.tasks.records` for the
files inside), on the storage every host of the pool sees.

Why whole directories are swapped: a task is several files that must agree (the ``.task`` file
counts the ``.recover.<n>`` steps), and no file system renames several files at once. So a save
writes a complete new directory ``<id>.temp``, then renames the current ``<id>`` to
``<id>.backup``, ``<id>.temp`` to ``<id>``, and removes the backup. Whatever instant a crash
hits, one complete version survives:

* ``<id>.temp`` alone or beside ``<id>``: the new version was not in place yet; it is dropped.
* ``<id>.backup`` without ``<id>``: the crash fell between the two renames; the backup (the
  version before the save) is put back.
* ``<id>`` beside ``<id>.backup``: the new version is in place; the backup is dropped.

:meth:`TaskStore.load_all` repairs these leftovers before it reads anything, and so does every
save and removal. Removal renames ``<id>`` to ``<id>.temp`` before deleting it, so a removal cut
short never leaves a directory with some of its files gone. Each file is written atomically and
fsynced by the I/O layer, and the tasks directory is fsynced after each rename, so the order of
the steps also holds across a power cut.

Every file operation goes through a :class:`TaskFileIO`, which the daemon fills with the master
domain's :class:`~virthost.storage.oop.OutOfProcessIO`: a hung mount then costs a time-boxed
call, not a daemon thread. Failures come out as TaskMetaDataSaveError (407) and
TaskMetaDataLoadError (408).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import replace
from typing import Protocol

from virthost.common import errors, validate
from virthost.storage import constants as sc
from virthost.storage import errors as se
from virthost.storage.tasks.records import (
    RecordFormatError,
    TaskRecord,
    decode_fields,
    encode_fields,
)
from virthost.storage.tasks.states import TaskState

log = logging.getLogger("virthost.storage.tasks")

TASKS_DIR = "tasks"
TEMP_SUFFIX = ".temp"
BACKUP_SUFFIX = ".backup"

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_ENTRY = re.compile(rf"({_UUID})({re.escape(TEMP_SUFFIX)}|{re.escape(BACKUP_SUFFIX)})?")
_RECOVERY_FILE = re.compile(r"\.recover\.(0|[1-9][0-9]*)")


class TaskFileIO(Protocol):
    """The file operations the store needs; :class:`OutOfProcessIO` provides all of them.

    ``write_file`` must replace the file atomically and durably (temporary file, fsync,
    rename, directory fsync); ``fsync`` must work on a directory.
    """

    def exists(self, path: str) -> bool: ...

    def listdir(self, path: str) -> list[str]: ...

    def read_file(self, path: str) -> bytes: ...

    def write_file(self, path: str, data: bytes) -> None: ...

    def makedirs(self, path: str) -> None: ...

    def rename(self, src: str, dst: str) -> None: ...

    def rmtree(self, path: str, root: str) -> None: ...

    def fsync(self, path: str) -> None: ...


def tasks_dir_of(master_domain_dir: str) -> str:
    """Where a pool keeps its tasks, given the directory of its master domain."""
    return os.path.join(master_domain_dir, sc.MASTER_FS_DIR, TASKS_DIR)


class TaskStore:
    """The persisted tasks of one pool, under ``tasks_dir``."""

    def __init__(self, io: TaskFileIO, tasks_dir: str) -> None:
        self._io = io
        self._dir = validate.absolute_path(tasks_dir, "tasks_dir")

    def __repr__(self) -> str:
        return f"<TaskStore {self._dir}>"

    @property
    def directory(self) -> str:
        return self._dir

    def task_dir(self, task_id: str) -> str:
        return os.path.join(self._dir, validate.uuid(task_id, "taskID"))

    # --- writing --------------------------------------------------------------------------

    def save(self, record: TaskRecord) -> None:
        """Replace the persisted task ``record.task_id`` with ``record``, atomically."""
        task_id = validate.uuid(record.task_id, "taskID")
        record = replace(record, task_id=task_id)
        try:
            self._io.makedirs(self._dir)
            self._repair(task_id)
            path = self.task_dir(task_id)
            temp, backup = path + TEMP_SUFFIX, path + BACKUP_SUFFIX
            self._io.makedirs(temp)
            for name, data in self._files(task_id, record).items():
                self._io.write_file(os.path.join(temp, name), data)
            replacing = self._io.exists(path)
            if replacing:
                self._io.rename(path, backup)
            self._io.rename(temp, path)
            self._io.fsync(self._dir)
            if replacing:
                self._io.rmtree(backup, self._dir)
        except (OSError, errors.VirtHostError) as e:
            raise se.TaskMetaDataSaveError(f"task {task_id}: {e}") from e

    def remove(self, task_id: str) -> None:
        """Forget the persisted task; nothing happens if there is none."""
        task_id = validate.uuid(task_id, "taskID")
        path = self.task_dir(task_id)
        temp = path + TEMP_SUFFIX
        try:
            for leftover in (temp, path + BACKUP_SUFFIX):
                if self._io.exists(leftover):
                    self._io.rmtree(leftover, self._dir)
            if self._io.exists(path):
                self._io.rename(path, temp)
                self._io.fsync(self._dir)
                self._io.rmtree(temp, self._dir)
        except (OSError, errors.VirtHostError) as e:
            raise se.TaskMetaDataSaveError(f"removing task {task_id}: {e}") from e

    @staticmethod
    def _files(task_id: str, record: TaskRecord) -> dict[str, bytes]:
        files = {f"{task_id}.task": encode_fields(record.task_fields())}
        for number, step in enumerate(record.recoveries):
            files[f"{task_id}.recover.{number}"] = encode_fields(step.to_fields())
        if record.state is TaskState.FINISHED or record.result is not None:
            files[f"{task_id}.result"] = encode_fields(record.result_fields())
        return files

    def _repair(self, task_id: str) -> None:
        """Finish or undo a swap that a crash interrupted (see the module docstring)."""
        path = self.task_dir(task_id)
        temp, backup = path + TEMP_SUFFIX, path + BACKUP_SUFFIX
        if self._io.exists(temp):
            log.info("Dropping the unfinished new version of task %s", task_id)
            self._io.rmtree(temp, self._dir)
        if self._io.exists(backup):
            if self._io.exists(path):
                self._io.rmtree(backup, self._dir)
            else:
                log.warning("Restoring task %s from its backup (a save was interrupted)", task_id)
                self._io.rename(backup, path)
                self._io.fsync(self._dir)

    # --- reading --------------------------------------------------------------------------

    def task_ids(self) -> list[str]:
        """The ids of the persisted tasks, after repairing interrupted saves."""
        try:
            if not self._io.exists(self._dir):
                return []
            ids = set()
            for name in self._io.listdir(self._dir):
                match = _ENTRY.fullmatch(name)
                if match is None:
                    log.warning("Ignoring %s in %s: not a task", name, self._dir)
                else:
                    ids.add(match.group(1))
            for task_id in sorted(ids):
                self._repair(task_id)
            return sorted(task_id for task_id in ids if self._io.exists(self.task_dir(task_id)))
        except (OSError, errors.VirtHostError) as e:
            raise se.TaskMetaDataLoadError(f"listing {self._dir}: {e}") from e

    def load(self, task_id: str) -> TaskRecord:
        task_id = validate.uuid(task_id, "taskID")
        path = self.task_dir(task_id)
        try:
            names = set(self._io.listdir(path))
            task_name, result_name = f"{task_id}.task", f"{task_id}.result"
            if task_name not in names:
                raise RecordFormatError(f"{task_name} is missing")
            numbers = sorted(
                int(match.group(1))
                for name in names
                if name.startswith(task_id)
                and (match := _RECOVERY_FILE.fullmatch(name[len(task_id) :]))
            )
            if numbers != list(range(len(numbers))):
                raise RecordFormatError(f"recovery steps are not numbered 0..n-1: {numbers}")
            task = decode_fields(self._io.read_file(os.path.join(path, task_name)))
            recoveries = [
                decode_fields(self._io.read_file(os.path.join(path, f"{task_id}.recover.{n}")))
                for n in numbers
            ]
            result = None
            if result_name in names:
                result = decode_fields(self._io.read_file(os.path.join(path, result_name)))
            record = TaskRecord.from_files(task, recoveries, result)
        except (OSError, errors.VirtHostError, RecordFormatError) as e:
            raise se.TaskMetaDataLoadError(f"task {task_id}: {e}") from e
        if record.task_id != task_id:
            raise se.TaskMetaDataLoadError(f"task {task_id}: its file says id {record.task_id}")
        return record

    def load_all(self) -> list[TaskRecord]:
        """Every persisted task that can be read; the others are logged and left on disk."""
        records = []
        for task_id in self.task_ids():
            try:
                records.append(self.load(task_id))
            except se.TaskMetaDataLoadError:
                log.exception("Cannot load task %s from %s; left as it is", task_id, self._dir)
        return records
