"""Experiment tracking behind a tiny interface; the parent process is the only one that logs.

``logger=none`` gives :class:`NullTracker`; ``logger=wandb`` gives :class:`WandbTracker`, which
logs to Weights & Biases online, offline (into the run directory, for ``wandb sync`` later) or
not at all (``disabled``). Every hook of a tracker is safe to fail: a tracking error becomes one
warning and the experiment goes on; its results are written to the run directory before they
are logged. The names of everything logged are documented in ``docs/tracking.md``.

``tests/wandb_reader.py`` (``read_offline_run``, not part of the package) reads an offline run
back from its ``.wandb`` file, to see what was logged without a W&B server.
"""

from __future__ import annotations

import configparser
import functools
import importlib.util
import json
import logging
import netrc
import os
import shutil
import struct
import time
from pathlib import Path
from typing import Any, Callable, Protocol
from urllib.parse import urlsplit

import numpy as np

from cfgen.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_HOST = "https://api.wandb.ai"
#: the distribution is cfgen-dpg (``cfgen`` on PyPI is an unrelated tool)
INSTALL_HINT = 'pip install "cfgen-dpg[tracking]"'
#: run-directory entries that never go into the results artifact
ARTIFACT_EXCLUDE = ("wandb", ".submitit")


class Tracker(Protocol):
    """What a run reports to a tracking backend. Every call must be safe to fail (warn, go on)."""

    def log_setup(self, info: dict[str, Any]) -> None: ...
    def log_bounds(self, bounds: dict[str, Any]) -> None: ...
    def log_task(self, task: Any, result: Any, metrics: dict[str, Any]) -> None: ...
    def log_summary(self, summary: dict[str, Any]) -> None: ...
    def log_files(self, run_dir: Path) -> None: ...
    def finish(self, failed: bool = False) -> None: ...


class NullTracker:
    """``logger=none``: nothing is tracked (results are always written locally)."""

    def log_setup(self, info: dict[str, Any]) -> None:
        pass

    def log_bounds(self, bounds: dict[str, Any]) -> None:
        pass

    def log_task(self, task: Any, result: Any, metrics: dict[str, Any]) -> None:
        pass

    def log_summary(self, summary: dict[str, Any]) -> None:
        pass

    def log_files(self, run_dir: Path) -> None:
        pass

    def finish(self, failed: bool = False) -> None:
        pass


# ------------------------------------------------------------------------------ configuration --


def wandb_installed() -> bool:
    """Whether ``import wandb`` can work, without paying for the import."""
    try:
        return importlib.util.find_spec("wandb") is not None
    except (ImportError, ValueError):
        return False


def check(cfg) -> None:
    """Checks of ``cfg.logger`` that need no import of wandb; raises ConfigError naming the key."""
    lg = cfg.logger
    if lg.name != "wandb":
        return
    if not wandb_installed():
        raise ConfigError(
            f"logger=wandb needs the wandb package, which is not installed: run `{INSTALL_HINT}` "
            "(or use logger=none)"
        )
    timeout = lg.get("init_timeout")
    if timeout is not None and timeout <= 0:
        raise ConfigError(f"logger.init_timeout={timeout!r} is not allowed: expected > 0 seconds")


def _settings_file() -> Path:
    base = os.environ.get("WANDB_CONFIG_DIR") or Path.home() / ".config" / "wandb"
    return Path(base) / "settings"


def _global_settings() -> dict[str, str]:
    """The ``[default]`` section of wandb's global settings file (empty if none)."""
    parser = configparser.ConfigParser()
    try:
        parser.read(_settings_file())
    except (configparser.Error, OSError):
        return {}
    return dict(parser["default"]) if parser.has_section("default") else {}


def wandb_host() -> str:
    """The W&B server URL: WANDB_BASE_URL, else the settings file's base_url, else W&B cloud."""
    return os.environ.get("WANDB_BASE_URL") or _global_settings().get("base_url") or DEFAULT_HOST


def _netrc_path() -> Path:
    if os.environ.get("NETRC"):
        return Path(os.environ["NETRC"]).expanduser()
    for name in ("~/.netrc", "~/_netrc"):
        p = Path(name).expanduser()
        if p.exists():
            return p
    return Path("~/.netrc").expanduser()


def api_key_configured() -> bool:
    """Whether W&B credentials are configured, the ways wandb itself finds them.

    WANDB_API_KEY or WANDB_IDENTITY_TOKEN_FILE in the environment, a ``machine`` entry for the
    W&B host in ``~/.netrc`` (or $NETRC; ``wandb login`` writes it), or ``api_key`` in wandb's
    global settings file (``~/.config/wandb/settings`` or $WANDB_CONFIG_DIR/settings).
    """
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = urlsplit(wandb_host()).netloc
    try:
        creds = netrc.netrc(_netrc_path()).authenticators(host) if host else None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        creds = None
    if creds and creds[2]:
        return True
    return bool(_global_settings().get("api_key"))


def resolve_mode(mode: str | None) -> str:
    """``logger.mode``; when null: WANDB_MODE if set, else online with an API key, else offline."""
    if mode:
        return mode
    env = os.environ.get("WANDB_MODE", "").strip().lower()
    if env in ("online", "offline", "disabled"):
        return env
    if env == "dryrun":
        return "offline"
    return "online" if api_key_configured() else "offline"


def _multirun_context() -> tuple[str | None, str | None]:
    """(sweep dir, job name) when called inside a Hydra multirun job, else (None, None)."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        if not HydraConfig.initialized():
            return None, None
        hc = HydraConfig.get()
        if hc.mode != RunMode.MULTIRUN:
            return None, None
        return str(hc.sweep.dir), Path(hc.runtime.output_dir).name
    except Exception:  # noqa: BLE001 - tracking context is best effort
        return None, None


def run_tags(cfg) -> list[str]:
    """Dataset, method and ``logger.tags``, deduplicated, each cut to W&B's 64 characters."""
    tags = [str(cfg.dataset.name), str(cfg.method.name), *[str(t) for t in cfg.logger.tags]]
    return list(dict.fromkeys(t[:64] for t in tags if t))


def make_tracker(cfg, run_dir: Path) -> Tracker:
    """The tracker ``cfg.logger`` asks for (ConfigError if it cannot be had at all)."""
    if cfg.logger.name == "none":
        return NullTracker()
    if cfg.logger.name != "wandb":
        raise ConfigError(f"logger={cfg.logger.name} is not allowed: expected one of none, wandb")
    check(cfg)
    return WandbTracker.start(cfg, Path(run_dir))


# ------------------------------------------------------------------------------------ W&B ------


def _drop_failed_online_runs(run_dir: Path, since: float) -> None:
    """Remove the folder a failed online ``wandb.init`` left, so ``wandb sync`` finds one run."""
    for d in Path(run_dir).glob("wandb/run-*"):
        try:
            if d.is_dir() and d.stat().st_mtime >= since - 1:
                shutil.rmtree(d, ignore_errors=True)
        except OSError:
            pass


def _safe(method: Callable) -> Callable:
    """A tracker hook that never raises: a failure is one warning per hook, then the run goes on."""

    @functools.wraps(method)
    def wrapper(self: WandbTracker, *args, **kwargs):
        if self.run is None:
            return None
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - tracking must never lose an experiment
            if method.__name__ not in self._warned:
                self._warned.add(method.__name__)
                log.warning(
                    "W&B tracking failed in %s (results are still written to %s): %s: %s",
                    method.__name__,
                    self.run_dir,
                    type(exc).__name__,
                    str(exc).splitlines()[0] if str(exc) else "",
                )
            return None

    return wrapper


def _scalar(v: Any) -> Any:
    """A JSON-able scalar (numpy to Python, NaN/inf to None), or None for anything else."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    if isinstance(v, (bool, int, float, str)):
        return v
    return None


def _init_kwargs(cfg, run_dir: Path) -> dict[str, Any]:
    """``wandb.init``'s arguments but the mode: a sweep's jobs share a group (the sweep's
    directory, unless ``logger.group`` names one) and are told apart by their job names."""
    from omegaconf import OmegaConf

    lg = cfg.logger
    sweep_dir, job_name = _multirun_context()
    group = lg.get("group") or (sweep_dir[-128:] if sweep_dir else None)
    return dict(
        project=lg.project,
        entity=lg.entity,
        group=group,
        job_type="multirun" if sweep_dir else "run",
        name=job_name or run_dir.name,
        tags=run_tags(cfg),
        config=OmegaConf.to_container(cfg, resolve=True),
        dir=str(run_dir),
    )


def _init_or_offline(
    init: Callable[[str], Any], mode: str, run_dir: Path
) -> tuple[Any, str] | None:
    """``(run, mode)`` from ``init(mode)``; a failed online init is tried again offline (the
    results are then uploaded later, not lost). ``None`` when no run starts (a warning says
    why): the experiment goes on untracked."""
    attempt = time.time()
    try:
        return init(mode), mode
    except Exception as exc:  # noqa: BLE001
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        if mode != "online":
            log.warning(
                "W&B tracking is off: wandb.init failed (%s); results are written to %s",
                reason,
                run_dir,
            )
            return None
        try:
            run = init("offline")
        except Exception as exc2:  # noqa: BLE001
            log.warning(
                "W&B tracking is off: wandb.init failed online (%s) and offline "
                "(%s: %s); results are written to %s",
                reason,
                type(exc2).__name__,
                exc2,
                run_dir,
            )
            return None
        _drop_failed_online_runs(run_dir, since=attempt)
        log.warning(
            "W&B online init failed (%s); logging offline to %s instead: upload it "
            "later with `wandb sync %s`",
            reason,
            run.dir,
            Path(run.dir).parent,
        )
        return run, "offline"


def _announce(run: Any, mode: str) -> None:
    """Say where the run is (its URL, or the offline directory to sync) and plot the per-task
    metrics against the task index, not W&B's step (summaries of them would mean nothing)."""
    if mode == "offline":
        log.info(
            "W&B offline run in %s (upload later: wandb sync %s)",
            Path(run.dir).parent,
            Path(run.dir).parent,
        )
    elif mode == "online":
        log.info("W&B run %s", getattr(run, "url", None) or run.id)
    try:
        run.define_metric("task/index", summary="none")
        run.define_metric("task/*", step_metric="task/index", summary="none")
    except Exception:  # noqa: BLE001 - cosmetic
        pass


class WandbTracker:
    """Logs one experiment as one W&B run (see docs/tracking.md for every key)."""

    def __init__(self, run, run_dir: Path, mode: str):
        self.run = run
        self.run_dir = run_dir
        self.mode = mode
        self._warned: set[str] = set()
        self._tasks: list[dict[str, Any]] = []
        self._curves: list[tuple[str, np.ndarray, np.ndarray]] = []
        self._wandb: Any = None  # the wandb module, imported when a run starts

    @classmethod
    def start(cls, cfg, run_dir: Path) -> Tracker:
        """``wandb.init`` for this run; a failure online falls back to offline, then to nothing."""
        lg = cfg.logger
        mode = resolve_mode(lg.mode)
        try:
            import wandb
        except Exception as exc:  # noqa: BLE001 - a broken install must not lose the experiment
            log.warning(
                "W&B tracking is off: `import wandb` failed (%s: %s); results are written to %s",
                type(exc).__name__,
                exc,
                run_dir,
            )
            return NullTracker()
        kwargs = _init_kwargs(cfg, run_dir)
        timeout = float(lg.get("init_timeout") or 60.0)

        def init(m: Any) -> Any:
            settings = wandb.Settings(init_timeout=timeout, console="off", silent=True)
            return wandb.init(mode=m, settings=settings, reinit="finish_previous", **kwargs)

        started = _init_or_offline(init, mode, run_dir)
        if started is None:
            return NullTracker()
        run, mode = started
        tracker = cls(run, run_dir, mode)
        tracker._wandb = wandb
        _announce(run, mode)
        return tracker

    # -- hooks ------------------------------------------------------------------------------

    @_safe
    def log_setup(self, info: dict[str, Any]) -> None:
        cfg = info.get("config")
        if cfg:
            self.run.config.update(cfg, allow_val_change=True)
        for key in ("train_accuracy", "test_accuracy"):
            if key in info:
                self.run.summary[f"model/{key}"] = _scalar(info[key])
        if "model_seconds" in info:
            self.run.summary["model/seconds"] = _scalar(info["model_seconds"])

    @_safe
    def log_bounds(self, bounds: dict[str, Any]) -> None:
        wandb = self._wandb
        self.run.summary["bounds/mode"] = bounds.get("mode")
        classes = bounds.get("classes") or {}
        rows = []
        for cls_name, features in classes.items():
            for feature, entry in features.items():
                allowed = entry.get("allowed")
                rows.append(
                    [
                        str(cls_name),
                        str(feature),
                        _scalar(entry.get("low")),
                        _scalar(entry.get("high")),
                        json.dumps(allowed) if allowed is not None else "",
                        bool(entry.get("empty", False)),
                    ]
                )
        if rows:
            table = wandb.Table(
                columns=["class", "feature", "low", "high", "allowed", "empty"], data=rows
            )
            self.run.log({"bounds/table": table})
        self.run.summary["bounds/n_intervals"] = len(rows)
        self.run.summary["bounds/seconds"] = _scalar(bounds.get("seconds"))

    @_safe
    def log_task(self, task: Any, result: Any, metrics: dict[str, Any]) -> None:
        best = np.asarray(getattr(result, "best_fitness", np.empty(0)), dtype=float)
        mean = np.asarray(getattr(result, "mean_fitness", np.empty(0)), dtype=float)
        n_valid = int(metrics.get("nbr_valid_cf") or 0)
        error = metrics.get("error") or getattr(result, "error", None) or ""
        row = {
            "task/index": int(task.index),
            "task/query": int(task.query),
            "task/target": int(task.target),
            "task/combination": int(task.combination),
            "task/replication": int(task.replication),
            "task/success": int(n_valid > 0 and not error),
            "task/final_fitness": _scalar(float(best[-1])) if best.size else None,
            "task/generations": int(getattr(result, "generations", 0) or 0),
            "task/n_counterfactuals": int(metrics.get("nbr_cf") or 0),
            "task/n_valid": n_valid,
            "task/validity": _scalar(metrics.get("perc_valid_cf_all")),
            "task/n_changes": _scalar(metrics.get("avg_nbr_changes_per_cf")),
            "task/distance_mad": _scalar(metrics.get("distance_mad")),
            "task/runtime": _scalar(metrics.get("runtime")),
            "task/failed": int(bool(error)),
        }
        self._tasks.append(row)
        label = f"q{task.query}-t{task.target}-c{task.combination}-r{task.replication}"
        self._curves.append((label, best, mean))
        self.run.log({k: v for k, v in row.items() if v is not None})

    @_safe
    def log_summary(self, summary: dict[str, Any]) -> None:
        wandb = self._wandb
        for key, value in summary.items():
            v = _scalar(value)
            if v is not None or value is None:
                self.run.summary[key] = v
            elif isinstance(value, (list, tuple)):
                self.run.summary[key] = [_scalar(x) for x in value]
        payload: dict[str, Any] = {}
        if self._tasks:
            columns = [k.split("/", 1)[1] for k in self._tasks[0]]
            payload["tasks/table"] = wandb.Table(
                columns=columns, data=[list(r.values()) for r in self._tasks]
            )
            payload["queries/table"] = self._query_table()
        curves = [(label, b, m) for label, b, m in self._curves if b.size]
        if curves:
            rows = [
                [label, g, _scalar(b[g]), _scalar(m[g]) if g < m.size else None]
                for label, b, m in curves
                for g in range(b.size)
            ]
            payload["fitness/table"] = wandb.Table(
                columns=["task", "generation", "best_fitness", "mean_fitness"], data=rows
            )
            for name, pick in (("best", 1), ("mean", 2)):
                ys = [
                    np.nan_to_num(c[pick], nan=0.0).tolist()
                    for c in curves
                    if np.asarray(c[pick]).size
                ]
                keys = [c[0] for c in curves if np.asarray(c[pick]).size]
                if ys:
                    xs = [list(range(len(y))) for y in ys]
                    payload[f"fitness/{name}"] = wandb.plot.line_series(
                        xs=xs,
                        ys=ys,
                        keys=keys,
                        title=f"{name} fitness per generation",
                        xname="generation",
                    )
        if payload:
            self.run.log(payload)

    def _query_table(self):
        """Per query and target: tasks, success rate and the means of the task metrics."""
        import pandas as pd

        frame = pd.DataFrame([{k.split("/", 1)[1]: v for k, v in r.items()} for r in self._tasks])
        frame = frame.apply(pd.to_numeric, errors="coerce")  # None → NaN, so means skip them
        agg = (
            frame.groupby(["query", "target"], sort=True)
            .agg(
                n_tasks=("index", "size"),
                success_rate=("success", "mean"),
                validity=("validity", "mean"),
                n_changes=("n_changes", "mean"),
                distance_mad=("distance_mad", "mean"),
                generations=("generations", "mean"),
                final_fitness=("final_fitness", "mean"),
                runtime=("runtime", "mean"),
            )
            .reset_index()
        )
        for _, row in agg.iterrows():
            prefix = f"query/{int(row['query'])}-{int(row['target'])}"
            self.run.summary[f"{prefix}/success_rate"] = _scalar(float(row["success_rate"]))
            self.run.summary[f"{prefix}/validity"] = _scalar(float(row["validity"]))
        data = [[_scalar(v) for v in rec] for rec in agg.itertuples(index=False)]
        return self._wandb.Table(columns=list(agg.columns), data=data)

    @_safe
    def log_files(self, run_dir: Path) -> None:
        wandb = self._wandb
        run_dir = Path(run_dir)
        images = {
            f"plots/{p.stem}": wandb.Image(str(p))
            for p in sorted((run_dir / "plots").glob("*.png"))
        }
        if images:
            self.run.log(images)
        artifact = wandb.Artifact(
            f"results-{self.run.id}", type="results", description=f"cfgen run directory {run_dir}"
        )
        n = 0
        for path in sorted(run_dir.rglob("*")):
            rel = path.relative_to(run_dir)
            if not path.is_file() or rel.parts[0] in ARTIFACT_EXCLUDE or path.name.endswith(".tmp"):
                continue
            artifact.add_file(str(path), name=str(rel))
            n += 1
        if n:
            self.run.log_artifact(artifact)

    def finish(self, failed: bool = False) -> None:
        if self.run is None:
            return
        run, self.run = self.run, None
        try:
            run.finish(exit_code=1 if failed else 0)
        except Exception as exc:  # noqa: BLE001
            log.warning(
                "W&B tracking failed in finish (results are still written to %s): %s: %s",
                self.run_dir,
                type(exc).__name__,
                exc,
            )
            return
        if self.mode == "offline":
            folder = Path(run.dir).parent
            if not wait_until_complete(folder, timeout=10.0):
                log.warning("W&B offline run in %s is not complete on disk yet", folder)
            log.info("W&B offline run saved in %s; upload it with: wandb sync %s", folder, folder)


# ------------------------------------------------------------------- reading an offline run ----

_LOG_HEADER = struct.Struct("<4sHB")  # ":W&B", magic 0xBEE1, version
_REC_HEADER = struct.Struct("<IHB")  # crc32c, length, type (full / first / middle / last)
_BLOCK = 32768


def _records(path: Path):
    """The protobuf records of a ``.wandb`` file (a LevelDB-style log of wandb Records)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    ident, magic, _version = _LOG_HEADER.unpack_from(data, 0)
    if ident != b":W&B" or magic != 0xBEE1:
        raise ValueError(f"{path} is not a W&B transaction log")
    pos, pending = _LOG_HEADER.size, b""
    while pos + _REC_HEADER.size <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _REC_HEADER.size:
            pos += left
            continue
        _crc, length, kind = _REC_HEADER.unpack_from(data, pos)
        if kind == 0:  # zero padding up to the end of the block
            pos += left
            continue
        if pos + _REC_HEADER.size + length > len(data):
            return  # a record still being written: stop before it
        chunk = data[pos + _REC_HEADER.size : pos + _REC_HEADER.size + length]
        pos += _REC_HEADER.size + length
        if kind == 1:
            payload = chunk
        elif kind == 2:
            pending = chunk
            continue
        elif kind == 3:
            pending += chunk
            continue
        else:
            payload, pending = pending + chunk, b""
        rec = pb.Record()  # type: ignore[attr-defined]
        rec.ParseFromString(payload)
        yield rec


def _has_exit(path: Path) -> bool:
    try:
        return any(rec.WhichOneof("record_type") == "exit" for rec in _records(path))
    except Exception:  # noqa: BLE001 - a half-written file is simply not complete yet
        return False


def wait_until_complete(run_folder: str | Path, timeout: float = 10.0) -> bool:
    """Wait (bounded) until a run's ``.wandb`` file holds its exit record.

    ``wandb.finish`` can return before wandb's service has written the last records of an
    offline run; reading (or syncing) it right away could miss them.
    """
    deadline = time.monotonic() + timeout
    while True:
        files = sorted(Path(run_folder).glob("*.wandb"))
        if files and _has_exit(files[0]):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
