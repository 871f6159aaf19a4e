"""Errors of the runner that end a run with one line (not a configuration mistake)."""

from __future__ import annotations


class RunnerError(RuntimeError):
    """The tasks could not be run (workers keep dying, a scheduler refused the job, ...).

    The command line reports it as one ``cfgen: error:`` line and exits 1; the journal keeps
    every task finished before it.
    """
