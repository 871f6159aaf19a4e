"""Test explainers for the runner: real misbehaviour inside real worker processes.

A :class:`ToyExplainer` is deterministic in its task's generator and misbehaves on the one
task whose derived seed is ``poison`` (recognised by its generator's state): it raises,
SIGKILLs its own worker, sends a signal to the main process, or ignores SIGTERM and sleeps.
Built by :func:`toy_factory` (picklable through ``functools.partial``), the way a method's
``factory(problem, schema, class_bounds)`` is.
"""

from __future__ import annotations

import functools
import os
import signal
import time
from pathlib import Path

import numpy as np

from cfgen.explanation import Explanation
from cfgen.plan import Combinations, plan_tasks
from cfgen.runner import TaskResult, WorkerContext


class ToyExplainer:
    def __init__(self, d, mode, poison, marker, parent, sleep):
        self.d, self.mode, self.poison, self.marker, self.parent = d, mode, poison, marker, parent
        self.sleep = sleep

    def _hit(self, rng) -> bool:
        if self.poison is None:
            return False
        return rng.bit_generator.state == np.random.default_rng(self.poison).bit_generator.state

    def explain(self, x, target, k, rng):
        hit = self._hit(rng)
        if hit and self.mode == "raise":
            raise ValueError("injected failure")
        if hit and self.mode == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if hit and self.mode == "kill_once" and not os.path.exists(self.marker):
            Path(self.marker).touch()
            os.kill(os.getpid(), signal.SIGKILL)
        if hit and self.mode in ("interrupt", "terminate"):
            Path(self.marker).write_text(str(os.getpid()))
            os.kill(self.parent, signal.SIGINT if self.mode == "interrupt" else signal.SIGTERM)
            time.sleep(30)  # the parent stops this worker
        if hit and self.mode == "interrupt_here":
            raise KeyboardInterrupt
        if self.mode == "stubborn" and os.getpid() != self.parent:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # only SIGKILL ends this worker
        time.sleep(self.sleep)
        n = 1 + target % k
        cfs = x + rng.normal(size=(n, self.d))
        return Explanation(cfs, target, k, self.sleep, None, rng.random(3), rng.random(3),
                           cfs[:1].repeat(3, 0), generations=3)


def toy_factory(mode, poison, marker, parent, sleep, problem, schema, class_bounds):
    return ToyExplainer(len(schema), mode, poison, marker, parent, sleep)


def toy_setup(data, mode=None, poison_task=None, marker=None, replications=3, queries=6,
              sleep=0.01, parent=None):
    """108 tasks (6 queries × 2 targets × 3 combinations × 3 replications) on ``data``."""
    comb = Combinations(tuple(data.schema.names[:2]), ("none", "no_change"))
    qs = list(range(queries))
    tasks = plan_tasks(qs, [[1, 2]] * len(qs), comb.chosen(3, seed=1), replications, seed=5)
    poison = tasks[poison_task].seed if poison_task is not None else None
    factory = functools.partial(toy_factory, mode, poison, str(marker), parent or os.getpid(),
                                sleep)
    return tasks, WorkerContext(data, factory, None, comb, 3)


def same(a: TaskResult, b: TaskResult) -> bool:
    ea, eb = a.explanation, b.explanation
    return (a.index == b.index and a.error == b.error and ea.reason == eb.reason
            and np.array_equal(ea.counterfactuals, eb.counterfactuals)
            and np.array_equal(ea.best_per_generation, eb.best_per_generation))
