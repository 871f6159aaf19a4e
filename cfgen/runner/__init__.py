"""Running a plan's tasks: in this process, on worker processes, or as a Slurm job array.

Rooms: :mod:`.context` (what every worker needs once), :mod:`.task` (one task and its
result), :mod:`.worker` (the worker process side), :mod:`.pool` (the process pool and its
crash retries), :mod:`.cost` (measured per-task cost and chunk sizes), :mod:`.executors`
(choosing where tasks run), :mod:`.slurm` (job arrays), :mod:`.forkserver`,
:mod:`.resources` (CPUs, memory, open files), :mod:`.progress`, :mod:`.signals` (Ctrl-C and
SIGTERM for the command line), :mod:`.segments` (Slurm array tasks' journal segments). The
per-combination table lives with the other console output (:mod:`cfgen.console`).

Everything a caller needs is importable from here; submitit is imported only for Slurm.
"""

from cfgen.runner.context import WorkerContext
from cfgen.runner.errors import RunnerError
from cfgen.runner.executors import EXECUTORS, run_tasks
from cfgen.runner.forkserver import warm_up, warm_up_for
from cfgen.runner.pool import MAX_CRASHES, WorkersDied
from cfgen.runner.resources import resolve_workers, usable_cpus
from cfgen.runner.task import TaskResult, failed_result, run_task

__all__ = [
    "EXECUTORS", "MAX_CRASHES", "RunnerError", "TaskResult", "WorkerContext", "WorkersDied",
    "failed_result", "resolve_workers", "run_task", "run_tasks",
    "usable_cpus", "warm_up", "warm_up_for",
]
