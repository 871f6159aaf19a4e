"""What this machine lets a run use: CPUs (affinity, cgroup quota, Slurm), memory, open files.

The numbers size the process pool: workers = the configured or usable CPU count, capped by the
memory a worker needs (baseline + a multiple of the pickled context) and by the open-file
limit (raised to the hard limit first). Each cap that bites is logged with the key to change.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from pathlib import Path

from cfgen.errors import ConfigError

log = logging.getLogger(__name__)

# --- sizing constants (measured by bench/bench_launcher.py, see bench/results/launcher.md)
WORKER_BASELINE_BYTES = 160 * 2**20  # RSS of an idle forkserver worker with cfgen's imports
CONTEXT_FACTOR = 4  # worker bytes per pickled context byte (objects + explainers + search)
MEMORY_HEADROOM = 0.8  # use at most this share of the available memory for workers
FD_RESERVE, FD_PER_WORKER = 64, 8  # open files: the parent's own + per worker (pipes, sentinels)


def _read(path: str | Path) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def peak_rss() -> int:
    """Peak resident set size of this process in bytes (VmHWM)."""
    for line in (_read("/proc/self/status") or "").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    try:
        import resource

        scale = 1 if sys.platform == "darwin" else 1024
        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * scale
    except Exception:  # noqa: BLE001 - not available everywhere
        return 0


def _cgroup_dirs(controller: str) -> list[Path]:
    """Directories that may hold this process's cgroup files (v2 and v1, nested or root)."""
    dirs: list[Path] = []
    for line in (_read("/proc/self/cgroup") or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, ctrls, rel = parts
        rel = rel.lstrip("/")
        if ctrls == "":
            dirs.append(Path("/sys/fs/cgroup") / rel)
        elif controller in ctrls.split(","):
            dirs.append(Path("/sys/fs/cgroup") / controller / rel)
    dirs += [Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup") / controller]
    return [d for d in dict.fromkeys(dirs) if d.is_dir()]


def cgroup_cpu_limit() -> int | None:
    """CPUs allowed by a cgroup CPU quota (containers, ``docker --cpus``), if any."""
    best = None
    for d in _cgroup_dirs("cpu"):
        quota = period = None
        v2 = _read(d / "cpu.max")
        if v2:
            q, _, p = v2.partition(" ")
            if q != "max":
                quota, period = float(q), float(p or 100000)
        else:
            q1, p1 = _read(d / "cpu.cfs_quota_us"), _read(d / "cpu.cfs_period_us")
            if q1 and p1 and float(q1) > 0:
                quota, period = float(q1), float(p1)
        if quota and period:
            n = max(1, math.ceil(quota / period))
            best = n if best is None else min(best, n)
    return best


def usable_cpus() -> int:
    """CPUs this process may use: affinity, cgroup CPU quota, and Slurm's allocation."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        n = os.cpu_count() or 1
    quota = cgroup_cpu_limit()
    if quota:
        n = min(n, quota)
    for var in ("SLURM_CPUS_PER_TASK", "SLURM_CPUS_ON_NODE"):
        value = os.environ.get(var, "")
        if value.isdigit() and int(value) > 0:
            n = min(n, int(value))
    return max(1, n)


def check_max_workers(max_workers: object) -> int | None:
    """``experiment_params.max_workers`` as an int (or None), else a ConfigError naming it."""
    if max_workers is None:
        return None
    import numpy as np

    if (
        isinstance(max_workers, bool)
        or not isinstance(max_workers, (int, np.integer))
        or max_workers <= 0
    ):
        raise ConfigError(
            f"experiment_params.max_workers={max_workers!r} is not allowed: expected null "
            "(chosen from the usable CPUs) or a positive integer"
        )
    return int(max_workers)


def resolve_workers(max_workers: int | None, n_tasks: int) -> int:
    """``max_workers`` (validated), or one per usable CPU; at least 1, never more than tasks.

    Not "CPUs − 1": with tasks shipped in chunks the parent only records results and sleeps
    (well under 5 % of a core, bench/results/launcher.md).
    """
    n = check_max_workers(max_workers)
    if n is None:
        n = usable_cpus()
    return max(1, min(n, n_tasks))


def available_memory() -> int | None:
    """Bytes this process can still use: MemAvailable, or less under a cgroup memory limit."""
    found: list[int] = []
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith("MemAvailable:"):
            found.append(int(line.split()[1]) * 1024)
    for d in _cgroup_dirs("memory"):
        for limit_f, usage_f, inactive in (
            ("memory.max", "memory.current", "inactive_file"),
            ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file"),
        ):
            limit, usage = _read(d / limit_f), _read(d / usage_f)
            if not limit or not usage or not limit.isdigit() or int(limit) >= 2**60:
                continue
            cache = 0
            for line in (_read(d / "memory.stat") or "").splitlines():
                key, _, value = line.partition(" ")
                if key == inactive and value.isdigit():
                    cache = int(value)
            found.append(max(0, int(limit) - int(usage) + cache))
    return min(found) if found else None


def worker_memory(context_bytes: int) -> int:
    """Estimated peak memory of one worker holding a context pickled to ``context_bytes``."""
    return WORKER_BASELINE_BYTES + CONTEXT_FACTOR * context_bytes


def memory_cap(workers: int, per_worker: int, available: int | None) -> tuple[int, str | None]:
    """Workers that fit in ``available`` bytes (at least 1), and why the cap bit (or None)."""
    if available is None or per_worker <= 0:
        return workers, None
    fit = max(1, int(available * MEMORY_HEADROOM // per_worker))
    if fit >= workers:
        return workers, None
    return fit, (
        f"{workers} workers × ~{per_worker / 2**20:.0f} MB each would not fit in the "
        f"{available / 2**20:.0f} MB available; using {fit} "
        "(set experiment_params.max_workers lower to silence this)"
    )


def fd_cap(workers: int) -> tuple[int, str | None]:
    """Workers the open-file limit allows (raising the soft limit first if it is too low)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return workers, None
    need = FD_RESERVE + FD_PER_WORKER * workers
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= need:
        return workers, None
    target = need if hard == resource.RLIM_INFINITY else min(hard, need)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    except (ValueError, OSError):
        pass
    if soft >= need:
        return workers, None
    fit = max(1, (soft - FD_RESERVE) // FD_PER_WORKER)
    return fit, (
        f"the open-file limit ({soft}) allows {fit} workers, not {workers} "
        "(raise it with `ulimit -n`)"
    )


def cap_workers(workers: int, context_bytes: int) -> int:
    """``workers`` capped by memory and open files (each cap that bites is logged)."""
    workers, why = memory_cap(workers, worker_memory(context_bytes), available_memory())
    if why:
        log.warning("memory: %s", why)
    workers, why = fd_cap(workers)
    if why:
        log.warning("open files: %s", why)
    return workers


def _ticks(pid: int | str) -> int:
    """CPU ticks used by process ``pid`` and its reaped children (0 when it is gone)."""
    text = _read(f"/proc/{pid}/stat")
    if not text:
        return 0
    fields = text[text.rindex(")") + 2 :].split()
    return sum(int(v) for v in fields[11:15])  # utime stime cutime cstime


def _machine_ticks() -> tuple[int, int] | None:
    """(busy, total) CPU ticks of the whole machine so far (/proc/stat)."""
    line = (_read("/proc/stat") or "").splitlines()[:1]
    if not line or not line[0].startswith("cpu "):
        return None
    v = [int(x) for x in line[0].split()[1:9]]
    return sum(v) - v[3] - v[4], sum(v)


class CpuSampler:
    """How many CPUs *other* processes keep busy, between construction and :meth:`others`.

    ``ours`` are the pids whose CPU is this run's own (this process, its forkserver): the
    runner should not count its own forkserver's imports as load that would slow a pool down.
    """

    def __init__(self, ours: list[int]) -> None:
        self.ours = ours
        self.start = _machine_ticks()
        self.start_ours = sum(_ticks(p) for p in ours)

    def others(self) -> float | None:
        """Busy CPUs (0 .. CPU count) of other processes since the start; None if unknown."""
        end = _machine_ticks()
        if self.start is None or end is None or end[1] <= self.start[1]:
            return None
        cpus = os.cpu_count() or 1
        busy = end[0] - self.start[0] - (sum(_ticks(p) for p in self.ours) - self.start_ours)
        return max(0.0, min(float(cpus), busy / (end[1] - self.start[1]) * cpus))


def pool_speedup(workers: int, others: float | None) -> float:
    """How much faster ``workers`` processes finish than this one alone, when other processes
    keep ``others`` CPUs busy: the CPUs they leave free, between 1 and ``workers``.

    Deliberately cautious: on a busy machine more processes can grab a larger share of it, but
    that share is not there to plan with (measured: two workers beside others keeping one of
    two CPUs busy ran each task half as fast, bench/results/launcher.md)."""
    if others is None:
        return float(workers)
    free = float(os.cpu_count() or workers) - others
    return max(1.0, min(float(workers), free))
