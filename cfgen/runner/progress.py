"""Progress of a run: a tqdm bar on a terminal (rate, ETA, failures), else a log line per 10 %."""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import Any

from cfgen.runner.task import TaskResult

log = logging.getLogger("cfgen.runner")


class Progress:
    """Counts finished tasks; ``enabled``: None = a bar only on a terminal."""

    def __init__(self, total: int, done: int, desc: str, enabled: bool | None) -> None:
        self.total, self.count, self.failed = total, done, 0
        self._next_log = 0.1
        self.bar: Any = None
        if enabled is not False:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=done, desc=desc, unit="task", smoothing=0.05,
                            dynamic_ncols=True, disable=None if enabled is None else False,
                            file=sys.stderr)
            if self.bar.disable:
                self.bar = None

    def update(self, result: TaskResult) -> None:
        self.count += 1
        self.failed += result.error is not None
        if self.bar is not None:
            self.bar.update(1)
            if result.error is not None:
                self.bar.set_postfix(failed=self.failed, refresh=False)
        elif self.total and self.count / self.total >= self._next_log:
            log.info("%d/%d tasks done (%d failed)", self.count, self.total, self.failed)
            while self._next_log <= self.count / self.total:
                self._next_log += 0.1

    def logging(self) -> Any:
        """Log lines printed above the bar instead of through it."""
        if self.bar is None:
            return contextlib.nullcontext()
        from tqdm.contrib.logging import logging_redirect_tqdm

        return logging_redirect_tqdm()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
