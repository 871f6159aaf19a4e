"""``experiment_params.executor=slurm``: the run's tasks as one Slurm job array (submitit).

* The first tasks run here, measured; the rest are cut into contiguous chunks of about
  ``slurm.chunk_seconds`` of work (at most ``slurm.max_array_tasks``), one array task each.
* The worker context is written once to ``<run dir>/slurm/context.pkl``; each array task loads
  it, runs its chunk (on a process pool when it has more than one CPU) and writes every result
  to its own journal segment (:mod:`cfgen.runner.segments`) as it finishes.
* This process polls every ``slurm.poll_seconds``: it records each new result from the
  segments (appending it to the run's journal) and asks ``sacct`` (``squeue`` when accounting
  does not know a task) about array tasks that have not delivered everything. An array task
  that ended (cancelled, failed, timed out, its node lost) turns its missing tasks into failed
  results naming its Slurm state; ``experiment_params.resume=true`` reruns just those.
* Ctrl-C or SIGTERM here cancels the array (``scancel``); what the segments hold is merged by
  the next resume. Results depend only on the task, so the files equal a local run's.
"""

from __future__ import annotations

import logging
import math
import pickle
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Sequence

from cfgen.errors import ConfigError
from cfgen.plan import Task
from cfgen.runner import segments
from cfgen.runner.context import WorkerContext
from cfgen.runner.cost import CostMeter
from cfgen.runner.errors import RunnerError
from cfgen.runner.pool import Record
from cfgen.runner.task import failed_result, run_task

log = logging.getLogger("cfgen.runner")

KEY = "experiment_params.slurm"
MEASURE_TASKS = 3  # measured here before the array is cut
MEASURE_SECONDS = 1.0
STATUS_SECONDS = 60.0  # a progress line this often while the array runs
GRACE_SECONDS = 10.0  # an array task that ended COMPLETED may still deliver its last records
#: Slurm states after which an array task delivers nothing more
ACTIVE = (
    "PENDING",
    "RUNNING",
    "CONFIGURING",
    "COMPLETING",
    "REQUEUED",
    "RESIZING",
    "SUSPENDED",
    "REQUEUE_HOLD",
    "REQUEUE_FED",
    "SIGNALING",
    "STAGE_OUT",
)


@dataclass
class SlurmSettings:
    """``experiment_params.slurm`` (the structured config mirrors these fields)."""

    partition: str | None = None  # sbatch --partition; None: the cluster's default
    time_min: int = 60  # wall-time limit of each array task, minutes
    cpus_per_task: int = 1  # CPUs of each array task (more than 1: a process pool inside)
    mem_gb: float = 2.0  # memory of each array task, GB
    max_parallel: int = 64  # array tasks running at once (--array=0-N%max_parallel)
    chunk_seconds: float = 60.0  # target work per array task, from the measured task cost
    max_array_tasks: int = 1000  # at most this many array tasks (Slurm's MaxArraySize: 1001)
    account: str | None = None  # sbatch --account
    qos: str | None = None  # sbatch --qos
    setup: list[str] = field(default_factory=list)  # shell lines run first, e.g. module load
    poll_seconds: float = 5.0  # how often this process reads the segments and asks sacct
    additional_parameters: dict[str, Any] = field(default_factory=dict)  # other sbatch options

    @classmethod
    def from_config(cls, node: Any) -> SlurmSettings:
        """From ``experiment_params.slurm`` (a mapping, a DictConfig, an instance or None)."""
        if isinstance(node, cls):
            settings = node
        else:
            if node is not None and not isinstance(node, dict):
                from omegaconf import OmegaConf

                node = OmegaConf.to_container(node, resolve=True)
            node = dict(node or {})
            known = {f.name for f in fields(cls)}
            unknown = sorted(set(node) - known)
            if unknown:
                raise ConfigError(
                    f"{KEY}.{unknown[0]} is not a setting: expected one of "
                    f"{', '.join(sorted(known))}"
                )
            settings = cls(**node)
        settings.check()
        return settings

    def check(self) -> None:
        for name in ("time_min", "cpus_per_task", "max_parallel", "max_array_tasks"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(
                    f"{KEY}.{name}={value!r} is not allowed: expected a positive integer"
                )
        for name in ("mem_gb", "chunk_seconds", "poll_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(
                    f"{KEY}.{name}={value!r} is not allowed: expected a positive number"
                )

    def executor_parameters(self) -> dict[str, Any]:
        """submitit ``AutoExecutor.update_parameters`` arguments (unset ones left out)."""
        params: dict[str, Any] = {
            "name": "cfgen",
            "timeout_min": self.time_min,
            "cpus_per_task": self.cpus_per_task,
            "mem_gb": self.mem_gb,
            "nodes": 1,
            "tasks_per_node": 1,
            "slurm_array_parallelism": self.max_parallel,
        }
        for key in ("partition", "account", "qos"):
            if getattr(self, key):
                params[f"slurm_{key}"] = getattr(self, key)
        if self.setup:
            params["slurm_setup"] = list(self.setup)
        if self.additional_parameters:
            params["slurm_additional_parameters"] = dict(self.additional_parameters)
        return params


# ---------------------------------------------------------------------------- array task side
def run_array_task(context_file: str, segment_file: str, tasks: Sequence[Task]) -> int:
    """One array task: its chunk, every result written to its segment as it finishes."""
    from cfgen.runner.executors import run_tasks

    ctx = pickle.loads(Path(context_file).read_bytes())
    writer = segments.SegmentWriter(segment_file)
    try:
        run_tasks(
            [Task(*t) for t in tasks],
            ctx,
            parallel=True,
            max_workers=None,
            journal=writer,
            progress=False,
        )
    finally:
        writer.close()
    return len(tasks)


# ---------------------------------------------------------------------------- this process
def chunk(
    tasks: Sequence[Task], per_task: float | None, settings: SlurmSettings
) -> list[list[Task]]:
    """Contiguous chunks of about ``chunk_seconds`` of work each."""
    n = len(tasks)
    if n == 0:
        return []
    total = n * (per_task or 0.0)
    count = max(
        1,
        min(n, settings.max_array_tasks, math.ceil(total / settings.chunk_seconds) if total else 1),
    )
    size = math.ceil(n / count)
    return [list(tasks[i : i + size]) for i in range(0, n, size)]


def measure_here(queue: list[Task], ctx: WorkerContext, record: Record) -> CostMeter:
    """Run the first tasks here (popped from ``queue``): what a task costs."""
    meter, start = CostMeter(), time.perf_counter()
    while queue and meter.n < MEASURE_TASKS and time.perf_counter() - start < MEASURE_SECONDS:
        t = queue.pop(0)
        t0 = time.perf_counter()
        r = run_task(t, ctx)
        meter.add(time.perf_counter() - t0)
        record(t, r)
    return meter


def _submit(
    chunks: list[list[Task]],
    ctx: WorkerContext,
    settings: SlurmSettings,
    folder: Path,
    seg_dir: Path,
) -> list[Any]:
    """The array (one job per chunk); a refusal by sbatch as one line."""
    try:
        import submitit
    except ImportError:
        raise RunnerError(
            "experiment_params.executor=slurm needs submitit: pip install 'cfgen-dpg[cluster]'"
        ) from None
    if shutil.which("sbatch") is None or shutil.which("srun") is None:
        raise RunnerError(
            "experiment_params.executor=slurm needs Slurm, but sbatch/srun are "
            "not on PATH (use experiment_params.executor=process here)"
        )
    _precheck(settings)
    folder.mkdir(parents=True, exist_ok=True)
    context_file = folder / "context.pkl"
    context_file.write_bytes(ctx.dumps())
    executor = submitit.AutoExecutor(folder=str(folder / "submitit" / "%j"), cluster="slurm")
    executor.update_parameters(**settings.executor_parameters())
    seg_files = [str(segments.segment_path(seg_dir, i)) for i in range(len(chunks))]
    try:
        return executor.map_array(
            run_array_task,
            [str(context_file)] * len(chunks),
            seg_files,
            [[tuple(t) for t in c] for c in chunks],
        )
    except Exception as exc:  # noqa: BLE001 - submitit wraps sbatch's answer in several types
        from cfgen.sweep.precheck import refusal

        rename = {"timeout_min": "time_min"}
        raise refusal(
            str(exc),
            {f.name: getattr(settings, f.name) for f in fields(settings)},
            KEY,
            "experiment_params.executor=slurm",
            rename,
        ) from None


def _precheck(settings: SlurmSettings, timeout: float = 30.0) -> None:
    """``sbatch --test-only`` on the array's own settings, its output captured: an unreachable
    cluster or a refused setting is one line here (naming the key), not sbatch's stderr lines
    from inside submitit followed by the error."""
    from cfgen.sweep.precheck import refusal, sbatch_script, tempfile_dir, test_only

    what = "experiment_params.executor=slurm"
    launcher = {
        ("array_parallelism" if k == "slurm_array_parallelism" else k.removeprefix("slurm_")): v
        for k, v in settings.executor_parameters().items()
    }
    with tempfile_dir() as tmp:
        code, out = test_only(sbatch_script(launcher, tmp), timeout, what)
    if code != 0:
        raise refusal(
            out,
            {f.name: getattr(settings, f.name) for f in fields(settings)},
            KEY,
            what,
            {"timeout_min": "time_min"},
        )


def slurm_states(job_ids: Sequence[str], timeout: float = 15.0) -> dict[str, str]:
    """State per job id: ``sacct``, then ``squeue`` for ids accounting does not know yet
    (``GONE``: in neither, i.e. ended without a record)."""
    from cfgen.sweep.forensics import slurm_states as sacct_states

    states = {j: s.split()[0] for j, s in sacct_states(list(job_ids), timeout).items()}
    unknown = [j for j in job_ids if j not in states]
    if unknown and shutil.which("squeue"):
        try:
            proc = subprocess.run(
                ["squeue", "-h", "-r", "-o", "%i %T", "-j", ",".join(unknown)],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
            queued = dict(ln.split()[:2] for ln in proc.stdout.splitlines() if len(ln.split()) > 1)
            if proc.returncode == 0:
                states.update({j: queued.get(j, "GONE") for j in unknown})
        except (OSError, subprocess.SubprocessError):
            pass
    return states


def _cancel(jobs: Sequence[Any]) -> None:
    ids = sorted({str(j.job_id).split("_")[0] for j in jobs})
    if ids and shutil.which("scancel"):
        subprocess.run(["scancel", *ids], capture_output=True, timeout=30, check=False)


@dataclass
class ArrayWatch:
    """The array as this process sees it: which chunk delivered what."""

    jobs: list[Any]
    chunks: list[list[Task]]
    seg_dir: Path
    record: Record
    n_features: int
    k: int
    seen: set[int] = field(default_factory=set)
    open: set[int] = field(default_factory=set)
    gone_since: dict[int, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.open = set(range(len(self.chunks)))

    def harvest(self, i: int) -> bool:
        """Record chunk ``i``'s new results; whether it has delivered all its tasks."""
        wanted = {t.index: t for t in self.chunks[i]}
        path = segments.segment_path(self.seg_dir, i)
        for task, result in sorted(segments.read_segment(path), key=lambda e: e[1].index):
            t = wanted.get(result.index)
            if t is not None and tuple(t) == tuple(task) and t.index not in self.seen:
                self.seen.add(t.index)
                self.record(t, result)
        return all(idx in self.seen for idx in wanted)

    def close_failed(self, i: int, state: str) -> None:
        """Chunk ``i``'s array task ended with ``state``: its missing tasks fail."""
        self.harvest(i)  # what it wrote before it ended
        job = self.jobs[i].job_id
        if state == "GONE":  # e.g. cancelled while pending: accounting never saw it run
            state = "GONE (neither squeue nor sacct knows it any more: cancelled while pending?)"
        missing = [t for t in self.chunks[i] if t.index not in self.seen]
        for t in missing:
            self.seen.add(t.index)
            self.record(
                t,
                failed_result(
                    t,
                    self.n_features,
                    self.k,
                    f"SlurmArrayTaskEnded: array task {job} ended {state} before this task "
                    "finished; rerun with experiment_params.resume=true",
                    here=False,
                ),
            )
        if missing:
            log.warning(
                "Slurm array task %s ended %s: %d of its tasks did not run",
                job,
                state,
                len(missing),
            )

    def poll(self) -> None:
        """One round: harvest every open chunk, then ask Slurm about the incomplete ones."""
        incomplete = [i for i in sorted(self.open) if not self.harvest(i)]
        self.open -= set(self.open) - set(incomplete)
        if not incomplete:
            return
        states = slurm_states([str(self.jobs[i].job_id) for i in incomplete])
        for i in incomplete:
            state = states.get(str(self.jobs[i].job_id), "PENDING")
            if state in ACTIVE:
                continue
            if state in ("COMPLETED", "GONE"):
                # its last records may reach this machine's view of a shared file system a
                # little after Slurm says it ended: a grace period before they count as missing
                first = self.gone_since.setdefault(i, time.monotonic())
                if time.monotonic() - first < GRACE_SECONDS:
                    continue
            self.close_failed(i, state)
            self.open.discard(i)

    def status(self) -> str:
        return (
            f"Slurm array {str(self.jobs[0].job_id).split('_')[0]}: "
            f"{len(self.chunks) - len(self.open)} of {len(self.chunks)} array tasks done, "
            f"{len(self.seen)} tasks recorded"
        )


def run_slurm(
    tasks: Sequence[Task],
    ctx: WorkerContext,
    record: Record,
    settings: Any,
    *,
    journal: Any,
    resume: bool = False,
) -> None:
    """Run ``tasks`` as a Slurm job array (see the module docstring)."""
    settings = SlurmSettings.from_config(settings)
    if journal is None or not hasattr(journal, "directory"):
        raise RunnerError(
            "experiment_params.executor=slurm needs the run's journal (a run "
            "directory on a file system the Slurm nodes share)"
        )
    seg_dir = segments.prepare(journal, resume)
    merged = segments.merge_left(seg_dir, tasks, record) if resume else set()
    queue = [t for t in tasks if t.index not in merged]
    meter = measure_here(queue, ctx, record)
    if not queue:
        return
    chunks = chunk(queue, meter.per_task, settings)
    folder = Path(journal.directory).parent / "slurm"
    jobs = _submit(chunks, ctx, settings, folder, seg_dir)
    log.info(
        "%d tasks ≈ %.0f s of work: Slurm array %s of %d array tasks (%d at a time), logs in %s",
        len(queue),
        len(queue) * (meter.per_task or 0.0),
        str(jobs[0].job_id).split("_")[0],
        len(chunks),
        settings.max_parallel,
        folder,
    )
    watch = ArrayWatch(jobs, chunks, seg_dir, record, ctx.n_features, ctx.k)
    try:
        last_status = time.monotonic()
        while watch.open:
            time.sleep(settings.poll_seconds)
            watch.poll()
            if time.monotonic() - last_status >= STATUS_SECONDS and watch.open:
                log.info("%s", watch.status())
                last_status = time.monotonic()
    except BaseException:
        _cancel(jobs)
        raise
    for path in seg_dir.glob("*.bin"):  # everything is in the journal now
        path.unlink(missing_ok=True)


def array_job_id(text: str) -> str | None:
    """The array's job id in a log line of :func:`run_slurm` (for scripts and tests)."""
    m = re.search(r"Slurm array (\d+)", text)
    return m.group(1) if m else None
