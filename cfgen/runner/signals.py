"""Ctrl-C and SIGTERM for the command line: stop cleanly once, exit at once the second time.

* The first Ctrl-C raises ``KeyboardInterrupt``; the runner stops its workers, the journal keeps
  every finished task, and the command prints one line and exits **130**.
* SIGTERM (``kill``, a scheduler's time limit) does the same through :class:`Terminated` (a
  ``KeyboardInterrupt``, so every cleanup path treats it alike) and exits **143**.
* A second Ctrl-C or SIGTERM while that cleanup runs prints one line and exits at once: 143 if
  either signal was a SIGTERM, else 130; once the line is printed, both are ignored for the
  last moments of interpreter shutdown (which would otherwise die of them with -2). Nothing
  finished is lost: each journal record is flushed as it is written, and worker processes and
  the forkserver die with this process (see :mod:`cfgen.runner.worker`).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any, Callable

INTERRUPTED_EXIT = 130  # 128 + SIGINT
TERMINATED_EXIT = 143  # 128 + SIGTERM
RESUME_HINT = (
    "finished tasks are kept in the run's journal/; rerun the same command with "
    "experiment_params.resume=true to finish"
)


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM: handled like Ctrl-C, exits with 143."""


_stopping: int | None = None  # the signal being handled, once the first one arrived


def _hard_exit(code: int, what: str) -> None:
    try:
        sys.stderr.write(f"\ncfgen: {what} again: exiting now; {RESUME_HINT}\n")
        sys.stderr.flush()
    finally:
        os._exit(code)


def _on_signal(signum: int, frame: Any) -> None:
    global _stopping
    code = TERMINATED_EXIT if signum == signal.SIGTERM else INTERRUPTED_EXIT
    if _stopping is not None:
        _hard_exit(
            TERMINATED_EXIT if _stopping == signal.SIGTERM else code,
            "terminated" if signum == signal.SIGTERM else "interrupted",
        )
    _stopping = signum
    if signum == signal.SIGTERM:
        raise Terminated()
    raise KeyboardInterrupt()


def install() -> None:
    """Handle SIGINT and SIGTERM as described above (main thread only; a no-op elsewhere).

    SIGINT keeps being ignored when the process started with it ignored (a background job).
    """
    global _stopping
    if threading.current_thread() is not threading.main_thread():
        return
    _stopping = None
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)


def exit_status(exc: BaseException) -> int:
    return TERMINATED_EXIT if isinstance(exc, Terminated) else INTERRUPTED_EXIT


def stop_line(exc: BaseException) -> str:
    """The one line printed when a run stops on a signal."""
    what = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
    return f"cfgen: {what}: {RESUME_HINT}"


def run_cli(main: Callable[[], Any]) -> int:
    """Run ``main()`` with the handlers installed; 0, or the exit status of the signal (the
    one line printed on stderr). ``SystemExit`` from ``main`` passes through."""
    install()
    try:
        main()
    except KeyboardInterrupt as exc:
        print(stop_line(exc), file=sys.stderr, flush=True)
        # What is left is the interpreter's own shutdown, which resets Python-level handlers
        # to the default (a Ctrl-C there would end the process with -2): ignore both signals.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        return exit_status(exc)
    return 0
