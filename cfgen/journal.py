"""The run journal: every finished task's result, appended as it arrives, so nothing is lost.

Layout, inside the run directory::

    journal/manifest.json   what the journal belongs to: config fingerprint, data digest,
                            task-plan digest, package versions, number of tasks, complete flag
    journal/results.bin     append-only records, one per finished task, in completion order

Records are JSON plus raw little-endian arrays inside checksummed frames (:mod:`cfgen.records`):
reading a journal never runs code from it. Only the parent process writes (workers return results
to it). Each record is written with one ``write`` loop on an unbuffered descriptor (a killed
process loses nothing already written) and ``fsync``-ed at most every ``FSYNC_SECONDS`` and on
close (a machine crash loses at most those seconds). When a write fails (full disk, ``ulimit
-f``) the partial record is cut off again and :class:`~cfgen.rundir.OutputError` names the file;
the journal stays resumable.

Reading keeps every intact record: a torn last record (the process died mid-write) is dropped as
"partly written"; a damaged record in the middle is skipped as "corrupt" and reading goes on at
the next intact one. A damaged file is rewritten with its intact records (the original kept as
``results.bin.corrupt``); the dropped tasks simply run again.

The fingerprint covers every config key that can change a result (everything except
``experiment_params.max_workers / parallel_replications / resume``, ``logger`` and ``output``),
plus a digest of the loaded data and of the task plan. ``experiment_params.resume=true`` reuses
finished tasks only when they match, and refuses otherwise with the keys that differ. Pickled
format-1 journals are read (and converted) only with ``CFGEN_TRUST_PICKLED_JOURNAL=1``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import numpy as np

from cfgen import records as rec
from cfgen.errors import ConfigError
from cfgen.plan import Task
from cfgen.records import Scan, UntrustedJournal, read_records, scan_records
from cfgen.rundir import OutputError, atomic_write

if TYPE_CHECKING:
    from cfgen.runner.task import TaskResult

__all__ = ["Journal", "Scan", "UntrustedJournal", "find_previous", "read_records",
           "scan_records"]

log = logging.getLogger(__name__)

JOURNAL_DIR = "journal"
MANIFEST = "manifest.json"
RECORDS = "results.bin"
DAMAGED = "results.bin.corrupt"
FORMAT = 2  # 1: pickled records (read only with the opt-in)
LEGACY_FORMAT = 1
FSYNC_SECONDS = 2.0

# keys that change how a run is executed, never what it computes
LAUNCH_ONLY = (
    ("experiment_params", "max_workers"),
    ("experiment_params", "parallel_replications"),
    ("experiment_params", "resume"),
    ("experiment_params", "executor"),
    ("experiment_params", "slurm"),
    ("logger",),
    ("output",),
    ("hydra",),
)


def launch_only_keys() -> list[str]:
    """:data:`LAUNCH_ONLY` as command-line keys (a node: itself and each of its fields), the
    list ``hydra.job.config.override_dirname.exclude_keys`` must hold (a test checks it), so a
    sweep's job directories are named by what changes results only."""
    import dataclasses
    from typing import get_type_hints

    from cfgen.config import Config

    keys: list[str] = []
    for path in LAUNCH_ONLY:
        if path == ("hydra",):
            continue
        keys.append(".".join(path))
        schema: Any = Config
        for name in path:
            schema = get_type_hints(schema).get(name)
        if isinstance(schema, type) and dataclasses.is_dataclass(schema):
            keys += [".".join(path) + "." + f.name for f in dataclasses.fields(schema)]
    return keys


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


def _fingerprint(manifest: dict[str, Any], fmt: int | None = None) -> str:
    key = {k: manifest[k] for k in ("format", "config", "data", "tasks")}
    if fmt is not None:
        key["format"] = fmt
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def _new_manifest(cfg, data, tasks: Sequence[Task]) -> dict[str, Any]:
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "config": result_config(cfg),
        "data": data_digest(data),
        "tasks": tasks_digest(tasks),
        "n_tasks": len(tasks),
        "versions": _versions(),
        "complete": False,
    }
    manifest["fingerprint"] = _fingerprint(manifest)
    # the fingerprint a pickled (format-1) journal of the same experiment carries
    manifest["legacy_fingerprint"] = _fingerprint(manifest, LEGACY_FORMAT)
    return manifest


# ---------------------------------------------------------------------------- files
def _write_json_atomic(path: Path, obj: Any) -> None:
    atomic_write(path, json.dumps(obj, indent=2) + "\n")


def _read_manifest(directory: Path) -> dict[str, Any] | None:
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def _k_of(manifest: dict[str, Any]) -> int | None:
    """``num_counterfactuals`` of a manifest's config (fills ``k`` of format-1 results)."""
    k = manifest.get("config", {}).get("experiment_params", {}).get("num_counterfactuals")
    return k if isinstance(k, int) else None


# ---------------------------------------------------------------------------- journal
class Journal:
    """Finished tasks of one run: ``done`` holds the reusable ones, ``append`` adds new ones."""

    def __init__(self, directory: Path, manifest: dict[str, Any], tasks: Sequence[Task]) -> None:
        self.directory = Path(directory)
        self.manifest = manifest
        self.done: dict[int, TaskResult] = {}
        self.resumed_from: Path | None = None
        self._tasks = {t.index: tuple(t) for t in tasks}
        self._fd: int | None = None
        self._size = 0  # bytes of intact records in the file
        self._failed: OSError | None = None  # the write error that stopped this journal
        self._last_sync = 0.0

    @property
    def path(self) -> Path:
        return self.directory / RECORDS

    # -- opening
    @classmethod
    def open(cls, run_dir: str | Path, cfg, data, tasks: Sequence[Task], resume: bool) -> Journal:
        """The journal of ``run_dir``, reusing finished tasks when ``resume`` is true.

        ``resume=true``: the journal in ``run_dir`` is reused if it belongs to the same
        experiment (else :class:`ConfigError` names what differs); if ``run_dir`` has none,
        the most recent matching journal in a sibling run directory
        (``run_dir/../../*/*/journal``, i.e. Hydra's ``outputs/<date>/<time>``) is copied in.
        ``resume=false``: any old journal in ``run_dir`` is discarded. A pickled journal
        raises :class:`UntrustedJournal` (one line) unless ``CFGEN_TRUST_PICKLED_JOURNAL=1``.
        """
        run_dir = Path(run_dir)
        journal = cls(run_dir / JOURNAL_DIR, _new_manifest(cfg, data, tasks), tasks)
        old = _read_manifest(journal.directory)
        if resume:
            journal._resume(run_dir, old)
        elif old is not None or journal.path.exists():
            journal._discard_notice()
        journal._start()
        return journal

    def _accepted(self) -> set[str]:
        """Fingerprints of journals this run may reuse."""
        out = {self.manifest["fingerprint"]}
        if rec.trust_pickled():
            out.add(self.manifest["legacy_fingerprint"])
        return out

    def _resume(self, run_dir: Path, old: dict[str, Any] | None) -> None:
        if old is not None:
            if old.get("format") == LEGACY_FORMAT and not rec.trust_pickled():
                raise UntrustedJournal(self.path)
            if old.get("fingerprint") not in self._accepted():
                raise ConfigError(
                    f"experiment_params.resume=true, but {self.directory} belongs to a different "
                    f"experiment ({describe_difference(old, self.manifest)}): rerun without "
                    "experiment_params.resume or in a new run directory"
                )
            self._load(self.path, old)
            return
        source = find_previous(run_dir, self.manifest["fingerprint"],
                               self.manifest["legacy_fingerprint"])
        if source is not None:
            self._load(source / RECORDS, _read_manifest(source) or {}, copy=True)
            self.resumed_from = source.parent
        elif self.path.exists():
            log.warning("%s has no readable manifest: its results are not reused",
                        self.directory)
        else:
            log.warning("experiment_params.resume=true, but no earlier run of this "
                        "experiment was found in %s or next to it: starting afresh", run_dir)

    def _discard_notice(self) -> None:
        try:
            n = f"{len(read_records(self.path, trust_pickle=False)[0])} finished tasks"
        except UntrustedJournal:
            n = "the (pickled, unread) finished tasks"
        log.warning("%s holds %s of an earlier run: starting afresh (set "
                    "experiment_params.resume=true to reuse them)", self.directory, n)

    def _start(self) -> None:
        """Write the manifest and open the records file for appending."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            if not self.done:
                self.path.unlink(missing_ok=True)
            _write_json_atomic(self.directory / MANIFEST, self.manifest)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._size = os.fstat(self._fd).st_size
        except OSError as exc:
            raise OutputError(exc.filename or self.path, exc) from exc

    def _load(self, path: Path, old: dict[str, Any], copy: bool = False) -> None:
        """Keep the intact records that match this plan; rewrite a damaged file."""
        if old.get("versions") and old.get("versions") != self.manifest["versions"]:
            log.warning("the journal was written with %s, this run uses %s: resumed results "
                        "may differ from an uninterrupted run", old["versions"],
                        self.manifest["versions"])
        scan = scan_records(path, k=_k_of(old))
        _report(path, scan)
        if copy or scan.legacy or scan.damaged:
            self._rewrite(path, scan, copy)
        stale = 0
        for task, result in scan.entries:
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

    def _rewrite(self, path: Path, scan: Scan, copy: bool) -> None:
        """This run's records file holding exactly ``scan``'s intact records (format 2)."""
        import shutil

        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            if scan.corrupt and not copy:
                shutil.copyfile(path, self.directory / DAMAGED)
        except OSError as exc:
            raise OutputError(exc.filename or self.directory, exc) from exc
        atomic_write(self.path, b"".join(rec.encode_record(t, r) for t, r in scan.entries))

    # -- writing
    def append(self, task: Task, result: TaskResult) -> None:
        """Add one finished task (written now, fsync-ed within ``FSYNC_SECONDS``).

        A failed write is cut off again (the file keeps only whole records) and raises
        :class:`OutputError`; the journal takes no more records after that."""
        if self._fd is None:
            raise RuntimeError("journal is closed")
        if self._failed is not None:
            raise OutputError(self.path, self._failed)
        blob = rec.encode_record(tuple(task), result)
        try:
            view = memoryview(blob)
            while view:
                view = view[os.write(self._fd, view):]
            self._size += len(blob)
            now = time.monotonic()
            if now - self._last_sync >= FSYNC_SECONDS:
                os.fsync(self._fd)
                self._last_sync = now
        except OSError as exc:
            self._failed = exc
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)
            raise OutputError(self.path, exc) from exc

    def close(self, complete: bool = False) -> None:
        """Sync and close; ``complete`` marks every task of the plan finished."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            if self._failed is None:
                os.fsync(fd)
        except OSError as exc:
            self._failed = exc
            raise OutputError(self.path, exc) from exc
        finally:
            os.close(fd)
        if complete and self._failed is None:
            self.manifest["complete"] = True
            _write_json_atomic(self.directory / MANIFEST, self.manifest)

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()
            return
        try:  # an error is on its way out: do not chain a second one to it
            self.close()
        except (OSError, OutputError) as err:
            log.warning("closing the journal after the error failed too: %s", err)


def _report(path: Path, scan: Scan) -> None:
    """Say what reading ``path`` dropped, and why."""
    if scan.corrupt:
        log.warning("%s: %d corrupt record%s (%d bytes) skipped, %d intact records kept: "
                    "their tasks run again (the damaged file is kept as %s)", path,
                    scan.corrupt, "s" if scan.corrupt > 1 else "", scan.corrupt_bytes,
                    len(scan.entries), DAMAGED)
    if scan.torn:
        log.warning("%s ends in a partly written record (%d bytes; the run was killed while "
                    "writing it): dropped", path, scan.torn)
    if scan.unreadable:
        log.warning("%s: %d intact records do not fit this cfgen's results (written by "
                    "another version?): their tasks run again", path, scan.unreadable)
    if scan.legacy:
        log.warning("%s is a pickled (format-1) journal, read because %s=1: converted to "
                    "format %d", path, rec.TRUST_ENV, FORMAT)


def _candidates(run_dir: Path) -> Iterator[Path]:
    root = run_dir.resolve().parent.parent
    own = (run_dir.resolve() / JOURNAL_DIR)
    for manifest in root.glob(f"*/*/{JOURNAL_DIR}/{MANIFEST}"):
        if manifest.parent.resolve() != own:
            yield manifest.parent


def find_previous(run_dir: str | Path, fingerprint: str,
                  legacy_fingerprint: str | None = None) -> Path | None:
    """The most recently written journal of the same experiment next to ``run_dir``.

    A pickled journal (``legacy_fingerprint``) counts only with ``CFGEN_TRUST_PICKLED_JOURNAL=1``;
    without it, a matching one is named in a warning and skipped."""
    accepted = {fingerprint}
    if legacy_fingerprint is not None and rec.trust_pickled():
        accepted.add(legacy_fingerprint)
    best, best_time = None, -1.0
    for directory in _candidates(Path(run_dir)):
        m = _read_manifest(directory)
        if m is None:
            continue
        if m.get("fingerprint") not in accepted:
            if legacy_fingerprint is not None and m.get("fingerprint") == legacy_fingerprint:
                log.warning("%s is a pickled journal of this experiment, not read (set %s=1 "
                            "if you wrote it yourself)", directory, rec.TRUST_ENV)
            continue
        records = directory / RECORDS
        mtime = records.stat().st_mtime if records.exists() else 0.0
        if mtime > best_time:
            best, best_time = directory, mtime
    return best
