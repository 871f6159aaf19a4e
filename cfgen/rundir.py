"""The run directory: one run at a time, writable before anything starts, failed writes as one line.

* :func:`prepare` creates the directory, checks that it can be written and takes an exclusive
  ``fcntl.flock`` on ``run_dir/.lock`` (the holder's pid and host written inside) for the run's
  lifetime. A second run on the same directory fails with :class:`RunDirBusy` naming the holder.
  The kernel frees the lock when the holder exits, however it exits (kill -9 included), so a run
  that died can be resumed at once. The lock file is never deleted (deleting a flock-ed file lets
  two processes each lock a different inode). Within one process the lock is re-entrant.
* :func:`check_creatable` checks, without creating anything, that a directory could be created.
  :func:`precheck_output` applies both to the run directory of ``python -m cfgen <overrides>``
  before Hydra writes ``.hydra/`` and its log there.
* :func:`output_errors` / :class:`OutputError`: an ``OSError`` while writing results (full disk,
  ``ulimit -f``, a directory gone read-only) becomes one line naming the file and the error;
  :func:`ignore_sigxfsz` makes an exceeded file-size limit raise ``EFBIG`` instead of killing
  the process.
* :func:`atomic_write`: a result file is written to a temporary file, ``fsync``-ed, renamed over
  the target and the directory ``fsync``-ed: after a crash the file is either the old or the new
  one, never a part. Write the run's "finished" marker (``summary.json``) last, and remove it
  with :func:`mark_unfinished` before rewriting anything in a directory that holds one.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import signal
import socket
import tempfile
import threading
from pathlib import Path
from typing import Any, Iterator

from cfgen.errors import ConfigError

LOCK = ".lock"
FINISHED = "summary.json"  # cfgen.store.SUMMARY: the marker of a finished run
#: errors of a write that say "the disk/limit/filesystem refused", whatever the file
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS})


class RunDirError(ConfigError):
    """The run directory cannot be used (cannot be created or written); exit status 2."""


class RunDirBusy(RunDirError):
    """Another live process holds the run directory's lock."""

    def __init__(self, path: Path, holder: str) -> None:
        self.path, self.holder = path, holder
        super().__init__(
            f"run directory {path} (hydra.run.dir) is in use by another cfgen run ({holder}): "
            "wait for it to finish, or choose another hydra.run.dir"
        )


class OutputError(RuntimeError):
    """Writing a result file failed; finished tasks stay in the journal. Exit status 1."""

    def __init__(self, path: str | os.PathLike[str] | None, error: OSError) -> None:
        self.path, self.error = path, error
        what = error.strerror or str(error)
        where = f"cannot write {path}" if path else "cannot write the run's files"
        super().__init__(
            f"{where}: {what} (errno {error.errno}): the finished tasks are kept in the run's "
            "journal/; fix the cause and rerun the same command with experiment_params.resume=true"
        )


def _why(exc: OSError) -> str:
    return f"{exc.strerror or exc} (errno {exc.errno})"


# ---------------------------------------------------------------------------- checks
def check_creatable(path: str | Path, key: str = "hydra.run.dir") -> None:
    """Raise :class:`RunDirError` unless ``path`` is, or could be created as, a writable
    directory. Creates nothing (a probe file in the nearest existing ancestor is removed)."""
    path = Path(os.path.abspath(path))
    probe = path
    while not probe.exists() and not probe.is_symlink() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise RunDirError(f"{key}={path} cannot be created: {probe} is not a directory")
    try:
        fd, name = tempfile.mkstemp(prefix=".cfgen-probe-", dir=probe)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        raise RunDirError(
            f"{key}={path} cannot be created: cannot write in {probe}: {_why(exc)}"
        ) from None


# ---------------------------------------------------------------------------- the lock
class RunDirLock:
    """An exclusive lock on one run directory, held until :meth:`release` (or the process ends)."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path, self._count = path, 1
        self._fd: int | None = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Drop one hold; the lock is freed when the last one is dropped."""
        if self._fd is None:
            return
        self._count -= 1
        if self._count > 0:
            return
        _HELD.pop(str(self.path), None)
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def __enter__(self) -> RunDirLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


_HELD: dict[str, RunDirLock] = {}


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode(errors="replace").split()
    except OSError:
        text = []
    if not text:
        return "pid unknown"
    pid, host = text[0], text[1] if len(text) > 1 else ""
    return f"pid {pid}" + (f" on {host}" if host and host != socket.gethostname() else "")


def prepare(run_dir: str | Path, key: str = "hydra.run.dir") -> RunDirLock:
    """Create ``run_dir``, check it is writable and lock it for this run (re-entrant here).

    Raises :class:`RunDirError` (one line naming the path and the OS error) or
    :class:`RunDirBusy` (naming the holder's pid)."""
    path = Path(os.path.abspath(run_dir))
    held = _HELD.get(str(path))
    if held is not None and held.held:
        held._count += 1
        return held
    if not path.is_dir():
        check_creatable(path, key)  # names a regular file or an unwritable ancestor
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise RunDirError(
            f"{key}={path} cannot be created: it exists and is not a directory"
        ) from None
    except OSError as exc:
        raise RunDirError(f"{key}={path} cannot be created: {_why(exc)}") from None
    try:
        fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise RunDirError(f"{key}={path} is not writable: {_why(exc)}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise RunDirBusy(path, holder) from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
    except OSError as exc:
        os.close(fd)
        raise RunDirError(f"{key}={path} is not writable: {_why(exc)}") from None
    lock = RunDirLock(path, fd)
    _HELD[str(path)] = lock
    return lock


def precheck_output(argv: list[str]) -> RunDirLock | None:
    """Before Hydra starts ``python -m cfgen <argv>``: check (and for a fixed directory, lock)
    where it will write; see :func:`prepare_configured`. Overrides that do not compose are left
    to the caller's own checks (returns None). Costs one compose (~0.4 s); a caller that already
    composes with ``return_hydra_config=True`` should call :func:`prepare_configured`."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from cfgen.cli import CONF_DIR, CONFIG_NAME
    from cfgen.config import register

    if any(a.startswith("-") and a not in ("-m", "--multirun") for a in argv):
        return None
    register()  # the structured schema the config's defaults name
    multirun = any(a in ("-m", "--multirun") for a in argv)
    overrides = [a for a in argv if a not in ("-m", "--multirun")]
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(config_name=CONFIG_NAME, overrides=overrides, return_hydra_config=True)
    except Exception:  # noqa: BLE001 - composition errors are reported by the config checks
        return None
    finally:
        GlobalHydra.instance().clear()
    return prepare_configured(cfg, multirun)


def prepare_configured(cfg: Any, multirun: bool) -> RunDirLock | None:
    """For a config composed with ``return_hydra_config=True``: a single run whose
    ``hydra.run.dir`` has no ``${now:...}`` is created and locked (keep the returned lock
    referenced while the app runs; :func:`prepare` in the run re-enters it), so a second run is
    refused before Hydra rewrites ``.hydra/``. A dated run directory, or a sweep's
    ``hydra.sweep.dir``, is only checked with :func:`check_creatable` (each job locks its own
    directory when it starts)."""
    from omegaconf import OmegaConf

    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    try:
        node = cfg.hydra.sweep if multirun else cfg.hydra.run
        raw = str(OmegaConf.to_container(node, resolve=False).get("dir"))  # type: ignore[union-attr]
        target = OmegaConf.select(cfg, key)
    except Exception:  # noqa: BLE001 - interpolations only Hydra's run time can resolve
        return None
    if target is None:
        return None
    if multirun or "${now:" in raw:
        check_creatable(target, key)
        return None
    return prepare(target, key)


# ---------------------------------------------------------------------------- writing
def ignore_sigxfsz() -> None:
    """Let an exceeded ``ulimit -f`` raise ``OSError(EFBIG)`` (reported as one line) instead
    of killing the process with SIGXFSZ. CPython already ignores SIGXFSZ at start-up; this
    restates it for code that reset it (embedding, signal-handling libraries). Only from the
    main thread (signal's rule)."""
    if hasattr(signal, "SIGXFSZ") and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def _inside(name: object, root: Path) -> bool:
    if not isinstance(name, (str, os.PathLike)):
        return False
    try:
        return Path(os.path.abspath(os.fspath(name))).is_relative_to(root)
    except (TypeError, ValueError):
        return False


@contextlib.contextmanager
def output_errors(run_dir: str | Path) -> Iterator[None]:
    """Turn an ``OSError`` about a file in ``run_dir`` (or a full disk / file-size limit /
    read-only filesystem error without a file name) into :class:`OutputError`. Other errors
    (e.g. a dataset that cannot be read) pass unchanged."""
    root = Path(os.path.abspath(run_dir))
    try:
        yield
    except OutputError:
        raise
    except OSError as exc:
        name = (
            exc.filename
            if _inside(exc.filename, root)
            else (exc.filename2 if _inside(exc.filename2, root) else None)
        )
        if name is None and not (exc.filename is None and exc.errno in WRITE_ERRNOS):
            raise
        raise OutputError(name, exc) from exc


def fsync_dir(directory: str | Path) -> None:
    """Make a rename/unlink in ``directory`` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EBADF):  # filesystems without directory sync
            raise
    finally:
        os.close(fd)


def atomic_write(path: str | Path, data: str | bytes) -> None:
    """Replace ``path`` by ``data`` all at once and durably (tmp file, fsync, rename, fsync
    of the directory). On failure the old file is untouched, the tmp file removed, and
    :class:`OutputError` names ``path``."""
    path = Path(path)
    blob = data.encode() if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(blob)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise OutputError(path, exc) from exc


def mark_unfinished(run_dir: str | Path, marker: str = FINISHED) -> None:
    """Remove the "finished" marker before a run rewrites ``run_dir``, so a crash part-way
    never leaves an old ``summary.json`` beside new, partial files."""
    path = Path(run_dir) / marker
    try:
        path.unlink()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise OutputError(path, exc) from exc
    fsync_dir(path.parent)
