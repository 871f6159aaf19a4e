"""Imported by the forkserver only (its preload): die when the run's main process dies.

``PR_SET_PDEATHSIG`` makes the kernel send SIGKILL to the forkserver when the thread that
started it exits; the forkserver's workers get the same from the forkserver. Without this the
forkserver outlives a killed run (each worker holds its "alive" pipe, so it never sees EOF).
"""

from __future__ import annotations

import os

from cfgen.runner.worker import die_with_parent, main_alive

_main = os.environ.get("CFGEN_FORKSERVER_OF", "")
if _main.isdigit():
    die_with_parent()
    if not main_alive(int(_main)):  # the main process died before prctl took effect
        os._exit(0)
