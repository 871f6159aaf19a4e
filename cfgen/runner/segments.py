"""Journal segments: what each Slurm array task writes, merged into the run's journal.

Layout, inside the run's journal directory::

    journal/segments/FINGERPRINT        the journal fingerprint the segments belong to
    journal/segments/<array task>.bin   records of the tasks that array task finished

A segment holds the same records as ``journal/results.bin`` (:func:`cfgen.records.encode_record`,
one per finished task, written as it finishes). Only its array task writes it; the run's own
process reads the segments while the array runs, records each new result once (appending it to
``results.bin``), and deletes a segment once everything in it is in the journal. Segments left
by a run that was stopped (its process killed, the array cancelled) are merged by the next
``experiment_params.resume=true`` of the same experiment, and deleted by a run without resume.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from cfgen import records
from cfgen.plan import Task

log = logging.getLogger(__name__)

SEGMENTS = "segments"
FINGERPRINT = "FINGERPRINT"
FSYNC_SECONDS = 2.0


def segments_dir(journal: Any) -> Path:
    return Path(journal.directory) / SEGMENTS


def segment_path(directory: Path, array_task: int) -> Path:
    return directory / f"{array_task}.bin"


class SegmentWriter:
    """Appends one array task's results (the ``journal`` its ``run_tasks`` writes to).

    Records already in the file (the array task was requeued) are in ``done`` and skipped."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.done = {r.index: r for _, r in records.read_records(self.path)[0]
                     if r.error is None}
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._last_sync = time.monotonic()

    def append(self, task: Task, result: Any) -> None:
        if self._fd is None:
            raise RuntimeError("segment is closed")
        view = memoryview(records.encode_record(tuple(task), result))
        while view:
            view = view[os.write(self._fd, view):]
        if time.monotonic() - self._last_sync >= FSYNC_SECONDS:
            os.fsync(self._fd)
            self._last_sync = time.monotonic()

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.fsync(fd)
            os.close(fd)


def read_segment(path: Path) -> list[tuple[tuple, Any]]:
    """The intact records of one segment (a torn last record is the one being written)."""
    return records.read_records(path, trust_pickle=False)[0]


def prepare(journal: Any, resume: bool) -> Path:
    """The segments directory for this run: emptied unless ``resume`` finds segments of the
    same experiment there (those are merged by :func:`merge_left`)."""
    directory = segments_dir(journal)
    fingerprint = str(journal.manifest.get("fingerprint", ""))
    stamp = directory / FINGERPRINT
    old = stamp.read_text().strip() if stamp.is_file() else None
    if directory.exists() and (not resume or old != fingerprint):
        if any(directory.glob("*.bin")):
            log.warning("%s: segments of %s are not reused", directory,
                        "an earlier run (resume=false)" if not resume else "another experiment")
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    stamp.write_text(fingerprint + "\n")
    return directory


def merge_left(directory: Path, tasks: Sequence[Task],
               record: Callable[[Task, Any], None]) -> set[int]:
    """Record the finished tasks that segments of an earlier attempt hold (each once), then
    delete those segments; the indices recorded."""
    wanted = {t.index: t for t in tasks}
    merged: set[int] = set()
    files = sorted(directory.glob("*.bin"))
    for path in files:
        for task, result in sorted(read_segment(path), key=lambda e: e[1].index):
            t = wanted.get(result.index)
            if t is None or tuple(t) != tuple(task) or result.error is not None \
                    or t.index in merged:
                continue
            record(t, result)
            merged.add(t.index)
    for path in files:
        path.unlink(missing_ok=True)
    if merged:
        log.info("merged %d finished tasks from %d segment(s) of an earlier attempt",
                 len(merged), len(files))
    return merged
