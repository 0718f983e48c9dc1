"""A stand-in SPM for the kill -9 tests: runs one persistent task, then waits to be killed.

Usage: spm_child.py <domain dir> <files dir> <task id> <file count> <block|finish>

The task's work registers "remove_files" for the files directory, then creates the files one
by one through the domain's out-of-process I/O. With ``block`` it then waits forever; with
``finish`` it returns and the script prints "finished" once the task has ended. Either way the
process then waits for its SIGKILL.
"""

from __future__ import annotations

import os
import sys
import threading

from virthost.storage.oop import ProcessPools
from virthost.storage.tasks import TaskContext, TaskManager, TaskStore, tasks_dir_of


def main() -> None:
    domain, files, task_id, count, mode = sys.argv[1:6]
    pools = ProcessPools()
    io = pools.get("master")
    store = TaskStore(io, tasks_dir_of(domain))
    # The child never rolls anything back: it dies first. The name only has to be known.
    tasks = TaskManager({"remove_files": lambda params: None})

    def work(ctx: TaskContext) -> dict[str, int]:
        ctx.add_recovery("remove_files", {"directory": files})
        io.makedirs(files)
        for number in range(int(count)):
            io.write_file(os.path.join(files, f"volume-{number}"), b"data")
        if mode == "block":
            threading.Event().wait()
        return {"files": int(count)}

    tasks.schedule("Volume.create", work, task_id=task_id, store=store, tag="pool")
    if mode == "finish":
        status = tasks.wait(task_id, 60)
        print(status["taskResult"], flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
