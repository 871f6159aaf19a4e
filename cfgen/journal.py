"""The run journal: every finished task's result, appended as it arrives, so nothing is lost.

Layout, inside the run directory::

    journal/manifest.json   what the journal belongs to: config fingerprint, data digest,
                            task-plan digest, package versions, number of tasks, complete flag
    journal/results.bin     append-only records, one per finished task, in completion order

A record is ``b"CFJ1" | crc32 (u32) | length (u64) | pickle((task tuple, result fields))``. Only
the parent process writes (workers return results to it). Each record is flushed as soon as it is
written (a killed process loses nothing already written) and ``fsync``-ed at most every
``FSYNC_SECONDS`` and on close (a machine crash loses at most those seconds). A torn last record
(the process died mid-write) fails its length or checksum and is dropped when the journal is read.

The fingerprint covers every config key that can change a result (everything except
``experiment_params.max_workers / parallel_replications / resume``, ``logger`` and ``output``),
plus a digest of the loaded data and of the task plan. ``experiment_params.resume=true`` reuses
finished tasks only when they match, and refuses otherwise with the keys that differ.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import struct
import time
import zlib
from dataclasses import fields
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from cfgen.errors import ConfigError
from cfgen.launcher import TaskResult
from cfgen.plan import Task

log = logging.getLogger(__name__)

JOURNAL_DIR = "journal"
MANIFEST = "manifest.json"
RECORDS = "results.bin"
FORMAT = 1
MAGIC = b"CFJ1"
HEADER = struct.Struct("<4sIQ")
FSYNC_SECONDS = 2.0

# keys that change how a run is executed, never what it computes
LAUNCH_ONLY = (
    ("experiment_params", "max_workers"),
    ("experiment_params", "parallel_replications"),
    ("experiment_params", "resume"),
    ("logger",),
    ("output",),
    ("hydra",),
)


# ---------------------------------------------------------------------------- fingerprint
def result_config(cfg) -> dict[str, Any]:
    """The resolved config without the keys that only change how a run is executed."""
    from omegaconf import OmegaConf

    conf = OmegaConf.to_container(cfg, resolve=True) if not isinstance(cfg, dict) else dict(cfg)
    conf = json.loads(json.dumps(conf, default=str))  # deep copy, JSON-safe
    for path in LAUNCH_ONLY:
        node = conf
        for key in path[:-1]:
            node = node.get(key, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(path[-1], None)
    return conf


def data_digest(data) -> str:
    """SHA-256 of the encoded arrays and feature names the tasks will see."""
    h = hashlib.sha256()
    h.update(json.dumps(list(data.schema.names)).encode())
    h.update(json.dumps([str(c) for c in data.class_names]).encode())
    for arr in (data.X_train, data.y_train, data.X_test, data.y_test):
        a = np.ascontiguousarray(arr)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def tasks_digest(tasks: Sequence[Task]) -> str:
    """SHA-256 of the task plan (every task's coordinates and seed, in order)."""
    h = hashlib.sha256()
    for t in tasks:
        h.update(repr(tuple(t)).encode())
    return h.hexdigest()


def _versions() -> dict[str, str]:
    import cfgen

    out = {"cfgen": cfgen.__version__, "numpy": np.__version__}
    for name in ("sklearn", "deap", "scipy"):
        try:
            out[name] = __import__(name).__version__
        except Exception:  # noqa: BLE001 - best effort
            pass
    return out


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def describe_difference(old: dict[str, Any], new: dict[str, Any], limit: int = 6) -> str:
    """``key: old → new`` for the config keys that differ (at most ``limit`` of them)."""
    a, b = _flatten(old.get("config", {})), _flatten(new.get("config", {}))
    diffs = [f"{k}: {a.get(k, '(absent)')!r} → {b.get(k, '(absent)')!r}"
             for k in sorted(set(a) | set(b)) if a.get(k, "(absent)") != b.get(k, "(absent)")]
    if not diffs:
        if old.get("data") != new.get("data"):
            diffs = ["the dataset's contents changed"]
        elif old.get("tasks") != new.get("tasks"):
            diffs = ["the task plan changed (a different cfgen version?)"]
        else:
            diffs = [f"journal format {old.get('format')!r} → {new.get('format')!r}"]
    more = f" (and {len(diffs) - limit} more)" if len(diffs) > limit else ""
    return "; ".join(diffs[:limit]) + more


# ---------------------------------------------------------------------------- records
def _encode(task: Task, result: TaskResult) -> bytes:
    payload = pickle.dumps(
        (tuple(task), {f.name: getattr(result, f.name) for f in fields(result)}),
        protocol=pickle.HIGHEST_PROTOCOL,
    )
    return HEADER.pack(MAGIC, zlib.crc32(payload), len(payload)) + payload


def read_records(path: Path) -> tuple[list[tuple[tuple, TaskResult]], int]:
    """Every intact record of ``path`` (read as a stream), and the byte offset where the
    intact part ends."""
    out: list[tuple[tuple, TaskResult]] = []
    if not path.exists():
        return out, 0
    known = {f.name for f in fields(TaskResult)}
    pos = 0
    with open(path, "rb") as fh:
        while True:
            header = fh.read(HEADER.size)
            if len(header) < HEADER.size:
                break
            magic, crc, length = HEADER.unpack(header)
            if magic != MAGIC:
                break
            payload = fh.read(length)
            if len(payload) < length or zlib.crc32(payload) != crc:
                break
            try:
                task, values = pickle.loads(payload)
                result = TaskResult(**{k: v for k, v in values.items() if k in known})
            except Exception:  # noqa: BLE001 - an unreadable record ends the intact part
                break
            out.append((tuple(task), result))
            pos += HEADER.size + length
    return out, pos


def _write_json_atomic(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as fh:
        fh.write(json.dumps(obj, indent=2) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _read_manifest(directory: Path) -> dict[str, Any] | None:
    try:
        return json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------------------- journal
class Journal:
    """Finished tasks of one run: ``done`` holds the reusable ones, ``append`` adds new ones."""

    def __init__(self, directory: Path, manifest: dict[str, Any], tasks: Sequence[Task]) -> None:
        self.directory = Path(directory)
        self.manifest = manifest
        self.done: dict[int, TaskResult] = {}
        self.resumed_from: Path | None = None
        self._tasks = {t.index: tuple(t) for t in tasks}
        self._fh = None
        self._last_sync = 0.0

    # -- opening
    @classmethod
    def open(cls, run_dir: str | Path, cfg, data, tasks: Sequence[Task], resume: bool) -> Journal:
        """The journal of ``run_dir``, reusing finished tasks when ``resume`` is true.

        ``resume=true``: the journal in ``run_dir`` is reused if it belongs to the same
        experiment (else :class:`ConfigError` names what differs); if ``run_dir`` has none,
        the most recent matching journal in a sibling run directory
        (``run_dir/../../*/*/journal``, i.e. Hydra's ``outputs/<date>/<time>``) is copied in.
        ``resume=false``: any old journal in ``run_dir`` is discarded.
        """
        run_dir = Path(run_dir)
        directory = run_dir / JOURNAL_DIR
        manifest = {
            "format": FORMAT,
            "config": result_config(cfg),
            "data": data_digest(data),
            "tasks": tasks_digest(tasks),
            "n_tasks": len(tasks),
            "versions": _versions(),
            "complete": False,
        }
        manifest["fingerprint"] = _fingerprint(manifest)
        journal = cls(directory, manifest, tasks)
        old = _read_manifest(directory)
        records = directory / RECORDS
        if resume:
            if old is not None:
                if old.get("fingerprint") != manifest["fingerprint"]:
                    raise ConfigError(
                        f"experiment_params.resume=true, but {directory} belongs to a different "
                        f"experiment ({describe_difference(old, manifest)}): rerun without "
                        "experiment_params.resume or in a new run directory"
                    )
                journal._load(records, old)
            else:
                source = find_previous(run_dir, manifest["fingerprint"])
                if source is not None:
                    journal._load(source / RECORDS, _read_manifest(source) or {}, copy=True)
                    journal.resumed_from = source.parent
                elif records.exists():
                    log.warning("%s has no readable manifest: its results are not reused",
                                directory)
                else:
                    log.warning("experiment_params.resume=true, but no earlier run of this "
                                "experiment was found in %s or next to it: starting afresh",
                                run_dir)
        elif old is not None or records.exists():
            n = len(read_records(records)[0])
            log.warning("%s holds %d finished tasks of an earlier run: starting afresh (set "
                        "experiment_params.resume=true to reuse them)", directory, n)
        directory.mkdir(parents=True, exist_ok=True)
        if not journal.done:
            records.unlink(missing_ok=True)
        _write_json_atomic(directory / MANIFEST, manifest)
        journal._fh = open(records, "ab")
        return journal

    def _load(self, path: Path, old: dict[str, Any], copy: bool = False) -> None:
        """Keep the intact records that match this plan; cut off a torn tail."""
        if old.get("versions") and old.get("versions") != self.manifest["versions"]:
            log.warning("the journal was written with %s, this run uses %s: resumed results "
                        "may differ from an uninterrupted run", old["versions"],
                        self.manifest["versions"])
        entries, end = read_records(path)
        target = self.directory / RECORDS
        if copy:
            self.directory.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as fh:
                for task, result in entries:
                    fh.write(_encode(Task(*task), result))
        elif path.exists() and path.stat().st_size > end:
            log.warning("%s ends in a partly written record (the run was killed while "
                        "writing it): dropped", path)
            with open(path, "r+b") as fh:
                fh.truncate(end)
        stale = 0
        for task, result in entries:
            if self._tasks.get(result.index) != task:
                stale += 1
            elif result.error is None:
                self.done[result.index] = result
            else:  # a failed task is retried
                self.done.pop(result.index, None)
        if stale:
            log.warning("%d journal records do not match this run's task plan: ignored", stale)
        log.info("resuming: %d of %d tasks already finished%s", len(self.done),
                 len(self._tasks), f" (from {path.parent.parent})" if copy else "")

    # -- writing
    def append(self, task: Task, result: TaskResult) -> None:
        """Add one finished task (flushed now, fsync-ed within ``FSYNC_SECONDS``)."""
        if self._fh is None:
            raise RuntimeError("journal is closed")
        self._fh.write(_encode(task, result))
        self._fh.flush()
        now = time.monotonic()
        if now - self._last_sync >= FSYNC_SECONDS:
            os.fsync(self._fh.fileno())
            self._last_sync = now

    def close(self, complete: bool = False) -> None:
        """Sync and close; ``complete`` marks every task of the plan finished."""
        if self._fh is None:
            return
        try:
            self._fh.flush()
            os.fsync(self._fh.fileno())
        finally:
            self._fh.close()
            self._fh = None
        if complete:
            self.manifest["complete"] = True
            _write_json_atomic(self.directory / MANIFEST, self.manifest)

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _fingerprint(manifest: dict[str, Any]) -> str:
    key = {k: manifest[k] for k in ("format", "config", "data", "tasks")}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def _candidates(run_dir: Path) -> Iterator[Path]:
    root = run_dir.resolve().parent.parent
    own = (run_dir.resolve() / JOURNAL_DIR)
    for manifest in root.glob(f"*/*/{JOURNAL_DIR}/{MANIFEST}"):
        if manifest.parent.resolve() != own:
            yield manifest.parent


def find_previous(run_dir: str | Path, fingerprint: str) -> Path | None:
    """The most recently written journal of the same experiment next to ``run_dir``."""
    best, best_time = None, -1.0
    for directory in _candidates(Path(run_dir)):
        m = _read_manifest(directory)
        if m is None or m.get("fingerprint") != fingerprint:
            continue
        records = directory / RECORDS
        mtime = records.stat().st_mtime if records.exists() else 0.0
        if mtime > best_time:
            best, best_time = directory, mtime
    return best
