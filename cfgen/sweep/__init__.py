"""Sweeps: which jobs finished (:mod:`.forensics`), the Hydra callback (:mod:`.callback`), and
the Slurm launcher precheck (:mod:`.precheck`). ``python -m cfgen.sweep DIR`` summarizes a sweep.

Everything is re-exported here, so ``cfgen.sweep.SweepCallback`` (the name in
``conf/config.yaml``) and ``from cfgen.sweep import summarize`` keep working.
"""

from cfgen.sweep.callback import SweepCallback
from cfgen.sweep.forensics import (
    ACTIVE_STATES,
    JOB_FILE,
    SUMMARY,
    SWEEP_SUMMARY,
    JobReport,
    format_summary,
    planned_jobs,
    report,
    slurm_states,
    summarize,
    write_summary,
)
from cfgen.sweep.precheck import check_slurm_launcher, precheck_launcher, sbatch_script

__all__ = [
    "ACTIVE_STATES", "JOB_FILE", "SUMMARY", "SWEEP_SUMMARY", "JobReport", "SweepCallback",
    "check_slurm_launcher", "format_summary", "planned_jobs", "precheck_launcher", "report",
    "sbatch_script", "slurm_states", "summarize", "write_summary",
]
