"""A process pool that runs chunks of tasks and survives its workers dying.

* The context travels to each worker once (the pool initializer); a chunk is a list of small
  :class:`~cfgen.plan.Task` tuples, sized from the measured per-task cost
  (:mod:`cfgen.runner.cost`); results come back per task and are recorded one by one.
* A worker killed by the OS (out of memory, ``kill -9``, a crash in native code) breaks the
  pool. It is rebuilt, and every task that was in flight is retried alone, one at a time, so
  the one that kills its worker is found; a task in flight at ``max_crashes`` deaths is
  recorded as failed (``WorkerCrash``). A worker that dies while it is being started (even
  before it reads its instructions, which surfaces as ``BrokenPipeError`` inside ``submit``)
  counts the same way. After ``MAX_CRASHES_IN_A_ROW`` deaths without any finished task the
  run stops with one line (:class:`WorkersDied`).
* Anything else (Ctrl-C, SIGTERM, an error) ends the workers at once and propagates.
"""

from __future__ import annotations

import collections
import logging
import queue as queue_mod
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Iterable

from cfgen.plan import Task
from cfgen.runner.cost import CostMeter
from cfgen.runner.errors import RunnerError
from cfgen.runner.task import TaskResult, WorkerInitError, failed_result
from cfgen.runner.worker import init_worker, worker_chunk

log = logging.getLogger(__name__)

MAX_CRASHES = 3  # a task in flight at this many worker deaths is marked failed
MAX_CRASHES_IN_A_ROW = 10  # pool deaths with no finished task in between: give up the run
BROKEN_WAIT = 60.0  # seconds to wait for a broken pool to fail its pending futures
WINDOW_PER_WORKER = 2  # chunks in flight per worker: workers never wait, a crash loses few
STOP_WAIT = 2.0  # seconds a stopped worker gets to exit before SIGKILL

Record = Callable[[Task, TaskResult], None]


class WorkersDied(RunnerError):
    """Worker processes keep dying before any task finishes."""


def crash_error(strikes: int) -> str:
    return (f"WorkerCrash: the worker running this task died {strikes} times (killed by a "
            "signal, e.g. SIGKILL or the out-of-memory killer, or a crash in native code)")


class ChunkPool:
    """Runs tasks on ``workers`` processes from ``mp`` (a multiprocessing context)."""

    def __init__(self, payload: bytes, workers: int, mp: Any, record: Record, *, main_pid: int,
                 n_features: int, k: int, max_crashes: int = MAX_CRASHES,
                 meter: CostMeter | None = None) -> None:
        self.payload, self.workers, self.mp, self.record = payload, workers, mp, record
        self.main_pid, self.d, self.k, self.max_crashes = main_pid, n_features, k, max_crashes
        self.meter = meter or CostMeter()
        self.queue: collections.deque[Task] = collections.deque()
        self.suspects: collections.deque[Task] = collections.deque()  # run alone after a crash
        self.strikes: collections.Counter[int] = collections.Counter()
        self.inflight: dict[Future, list[Task]] = {}
        # Completed futures arrive through a SimpleQueue fed by done-callbacks instead of
        # concurrent.futures.wait(): wait() takes every future's lock in turn, and a Ctrl-C
        # between two acquisitions leaks a lock the executor's thread then blocks on forever
        # at interpreter exit. SimpleQueue.get is safe to interrupt.
        self.done_q: queue_mod.SimpleQueue[Future] = queue_mod.SimpleQueue()
        self.pool: ProcessPoolExecutor | None = None
        self.refused = False  # a submission failed: the pool broke since the last wait
        self.crashes_in_a_row = 0
        self.peak = 0

    # -- the pool itself
    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.workers, mp_context=self.mp, initializer=init_worker,
                                   initargs=(self.payload, self.main_pid))

    def terminate(self) -> None:
        """Stop the pool now: cancel what has not started, end the worker processes (SIGTERM,
        then SIGKILL for any still there after ``STOP_WAIT`` seconds: a worker that ignores
        SIGTERM must not keep the interpreter from exiting)."""
        pool, self.pool = self.pool, None
        if pool is None:
            return
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for stop in ("terminate", "kill"):
            for p in processes:
                try:
                    getattr(p, stop)()
                except Exception:  # noqa: BLE001 - already gone
                    pass
            deadline = time.monotonic() + STOP_WAIT
            for p in processes:
                p.join(timeout=max(0.0, deadline - time.monotonic()))
            processes = [p for p in processes if p.exitcode is None]
            if not processes:
                return

    # -- submitting and collecting
    def _submit(self, chunk: list[Task]) -> bool:
        assert self.pool is not None
        try:
            fut = self.pool.submit(worker_chunk, chunk)
        except (BrokenProcessPool, OSError):
            # OSError: BrokenPipeError from popen_forkserver when the new worker died before
            # it read its instructions; either way the pool cannot be used any more
            self.refused = True
            return False
        self.inflight[fut] = chunk
        fut.add_done_callback(self.done_q.put)
        return True

    def _fill(self) -> None:
        """Submit up to the window; after a crash, one suspect alone with nothing else."""
        if self.suspects:
            if not self.inflight and self._submit([self.suspects[0]]):
                self.suspects.popleft()
            return
        window = WINDOW_PER_WORKER * self.workers
        while self.queue and len(self.inflight) < window:
            size = self.meter.chunk_size(len(self.queue), self.workers)
            chunk = [self.queue[i] for i in range(min(size, len(self.queue)))]
            if not self._submit(chunk):
                return
            for _ in chunk:
                self.queue.popleft()

    def _collect(self, timeout: float | None = None) -> set[Future]:
        """In-flight futures that are done: wait for at least one (up to ``timeout``)."""
        got: set[Future] = set()
        deadline = None if timeout is None else time.monotonic() + timeout
        while not got:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                fut = self.done_q.get(timeout=left)
            except queue_mod.Empty:
                break
            if fut in self.inflight:
                got.add(fut)
        while True:
            try:
                fut = self.done_q.get_nowait()
            except queue_mod.Empty:
                return got
            if fut in self.inflight:
                got.add(fut)

    def _wait_all(self) -> set[Future]:
        """After a break: every in-flight future (the executor fails them all, or they end)."""
        deadline = time.monotonic() + BROKEN_WAIT
        while not all(f.done() for f in self.inflight) and time.monotonic() < deadline:
            self._collect(timeout=max(0.0, deadline - time.monotonic()))
        return set(self.inflight)

    # -- outcomes
    def _settle(self, finished: set[Future]) -> list[Task]:
        """Record finished chunks task by task; the tasks of chunks lost to a crash."""
        lost: list[Task] = []
        for fut in sorted(finished, key=lambda f: self.inflight[f][0].index):
            chunk = self.inflight.pop(fut)
            exc = fut.exception() if fut.done() else BrokenProcessPool("no answer")
            if exc is None:
                results, seconds = fut.result()
                self.meter.add(seconds, len(results))
                self.crashes_in_a_row = 0
                for task, r in zip(chunk, results, strict=True):
                    self.peak = max(self.peak, r.peak_rss)
                    self.record(task, r)
            elif isinstance(exc, BrokenProcessPool):
                lost.extend(chunk)
            elif isinstance(exc, WorkerInitError):
                raise RunnerError(f"cannot run tasks on worker processes: {exc}") from exc
            else:  # e.g. a result that could not be pickled
                for task in chunk:
                    self.record(task, failed_result(task, self.d, self.k,
                                                    f"{type(exc).__name__}: {exc}", here=False))
        return lost

    def _recover(self, lost: list[Task]) -> None:
        """A worker died: strikes for the tasks in flight, a new pool, give up if it repeats."""
        self.terminate()
        self.crashes_in_a_row += 1
        if self.crashes_in_a_row > MAX_CRASHES_IN_A_ROW:
            raise WorkersDied(
                f"worker processes died {self.crashes_in_a_row} times in a row without "
                "finishing a task (out of memory? lower experiment_params.max_workers, or run "
                "with experiment_params.executor=local to see the error)")
        for task in sorted(lost, key=lambda t: t.index):
            self.strikes[task.index] += 1
            if self.strikes[task.index] >= self.max_crashes:
                self.record(task, failed_result(task, self.d, self.k,
                                                crash_error(self.strikes[task.index]),
                                                here=False))
            else:
                self.suspects.append(task)
        what = (f" running task {lost[0].index}" if len(lost) == 1 else
                f" with {len(lost)} tasks in flight" if lost else " while starting")
        log.warning("a worker process died%s; %d task(s) will be retried one at a time", what,
                    len(self.suspects))
        self.pool = self._new_pool()

    # -- the loop
    def run(self, tasks: Iterable[Task]) -> None:
        """Run every task; each result goes to ``record`` as its chunk returns."""
        self.queue.extend(tasks)
        self.pool = self._new_pool()
        try:
            while self.queue or self.suspects or self.inflight:
                self.refused = False
                self._fill()
                finished = self._collect() if self.inflight else set()
                broken = self.refused or any(
                    isinstance(f.exception(), BrokenProcessPool) for f in finished)
                if broken:
                    finished = self._wait_all()
                lost = self._settle(finished)
                if broken:
                    self._recover(lost)
        except BaseException:
            self.terminate()
            raise
        pool, self.pool = self.pool, None
        if pool is not None:
            pool.shutdown(wait=True)
