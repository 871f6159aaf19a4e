"""What a task costs, measured as the run goes, and the chunk sizes that follow from it.

Tasks of 7–15 ms (a small forest, a quick search) cost less than shipping them to a worker one
by one; chunks of about ``CHUNK_SECONDS`` of work make that overhead negligible, and keeping at
least ``CHUNKS_PER_WORKER`` chunks per worker left lets the last ones still balance.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

CHUNK_SECONDS = 0.1  # target work per chunk shipped to a worker
CHUNKS_PER_WORKER = 4  # chunks left per worker, at least (balance at the tail)
SAMPLES = 64  # recent per-task costs kept


@dataclass
class CostMeter:
    """Recent per-task seconds (from single tasks or whole chunks)."""

    samples: list[float] = field(default_factory=list)
    first: float | None = None  # the very first task (it also builds the explainer)

    def add(self, seconds: float, n: int = 1) -> None:
        if n <= 0:
            return
        if self.first is None and n == 1:
            self.first = seconds
            return
        self.samples.append(seconds / n)
        del self.samples[:-SAMPLES]

    @property
    def n(self) -> int:
        return len(self.samples) + (self.first is not None)

    @property
    def per_task(self) -> float | None:
        """Median seconds per task (the first task only when nothing else is known)."""
        if self.samples:
            return statistics.median(self.samples)
        return self.first

    @property
    def setup(self) -> float:
        """Extra seconds of the first task (building the explainer): a worker pays it too."""
        if self.first is None or not self.samples:
            return 0.0
        return max(0.0, self.first - statistics.median(self.samples))

    def chunk_size(self, n_left: int, workers: int, target: float = CHUNK_SECONDS) -> int:
        """Tasks per chunk: about ``target`` seconds of work, small enough to balance."""
        per = self.per_task
        if per is None or n_left <= 0:
            return 1
        want = math.ceil(target / max(per, 1e-6))
        balance = n_left // (CHUNKS_PER_WORKER * max(1, workers))
        return max(1, min(want, balance))
