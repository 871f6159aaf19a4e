"""Experiment tracking behind a tiny interface; the parent process is the only one that logs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol


class Tracker(Protocol):
    """What a run reports to a tracking backend. Every call must be safe to fail (warn, go on)."""

    def log_setup(self, info: dict[str, Any]) -> None: ...
    def log_bounds(self, bounds: dict[str, Any]) -> None: ...
    def log_task(self, task: Any, result: Any, metrics: dict[str, Any]) -> None: ...
    def log_summary(self, summary: dict[str, Any]) -> None: ...
    def log_files(self, run_dir: Path) -> None: ...
    def finish(self, failed: bool = False) -> None: ...


class NullTracker:
    """``logger=none``: nothing is tracked (results are always written locally)."""

    def log_setup(self, info: dict[str, Any]) -> None:
        pass

    def log_bounds(self, bounds: dict[str, Any]) -> None:
        pass

    def log_task(self, task: Any, result: Any, metrics: dict[str, Any]) -> None:
        pass

    def log_summary(self, summary: dict[str, Any]) -> None:
        pass

    def log_files(self, run_dir: Path) -> None:
        pass

    def finish(self, failed: bool = False) -> None:
        pass


def make_tracker(cfg, run_dir: Path) -> Tracker:
    """The tracker ``cfg.logger`` asks for."""
    if cfg.logger.name == "none":
        return NullTracker()
    from cfgen.errors import ConfigError

    raise ConfigError(f"logger={cfg.logger.name} is not available yet: expected none")
