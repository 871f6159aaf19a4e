"""Command-line helpers: compose-time checks of overrides, and one-line error reports."""

from __future__ import annotations

import difflib
import logging
import re
import sys
from pathlib import Path
from typing import Any, Iterator

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
from omegaconf import OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from cfgen.config import register, validate
from cfgen.errors import ConfigError
from cfgen.sweep import precheck_launcher
from cfgen.tracking import check as check_tracking

CONF_DIR = Path(__file__).resolve().parent / "conf"
CONFIG_NAME = "config"


def report_error(exc: BaseException) -> None:
    """Print the error as one line on stderr."""
    msg = " ".join(str(exc).split())
    print(f"cfgen: error: {msg}", file=sys.stderr)


#: extra config directories (``--config-dir``) searched after the package's own
EXTRA_DIRS: list[Path] = []


def group_options(group: str) -> list[str]:
    """Names available in a config group (YAML files under ``conf/<group>`` and under any
    ``--config-dir``)."""
    names = sorted(
        {
            p.stem
            for d in (CONF_DIR, *EXTRA_DIRS)
            if (d / group).is_dir()
            for p in (d / group).glob("*.yaml")
        }
    )
    if group == "hydra/launcher":
        names = sorted(set(names) | {"basic", "submitit_local", "submitit_slurm"})
    return names


def _expand(overrides: list[str]) -> Iterator[list[str]]:
    """Non-sweep overrides as given; each value of every sweep override tried once."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    base: list[str] = []
    sweeps: list[tuple[str, list[str]]] = []
    for o in parsed:
        key = o.get_key_element()
        if o.is_sweep_override():
            values = list(o.sweep_string_iterator())
            sweeps.append((key, values))
            base.append(f"{key}={values[0]}" if values else str(o.input_line))
        else:
            base.append(str(o.input_line))
    yield base
    for key, values in sweeps:
        for v in values[1:]:
            trial = list(base)
            trial[[j for j, b in enumerate(base) if b.startswith(f"{key}=")][0]] = f"{key}={v}"
            yield trial


def _unknown_key(key: str, parent_node: Any = None) -> str:
    """'x.y is not a config key' with the keys allowed there and the closest match.

    The keys come from the composed node the key was set on (``parent_node``, e.g. the chosen
    method's settings, which the schema leaves open), else from the structured schema.
    """
    from cfgen.config import Config

    parent, _, name = key.rpartition(".")
    allowed: list[str] = []
    if parent_node is not None and OmegaConf.is_dict(parent_node):
        allowed = [str(k) for k in parent_node.keys()]
    else:
        node = OmegaConf.structured(Config)
        sub = OmegaConf.select(node, parent) if parent else node
        if sub is not None and OmegaConf.is_dict(sub):
            allowed = [str(k) for k in sub.keys()]
    hint = difflib.get_close_matches(name, allowed, n=1)
    msg = f"{key} is not a config key"
    if hint:
        msg += f" (did you mean {parent + '.' if parent else ''}{hint[0]}?)"
    if allowed:
        msg += f"; keys under {parent or 'the root'}: {', '.join(allowed)}"
    return msg


def translate(exc: Exception, overrides: list[str] | None = None) -> ConfigError:
    """A Hydra/OmegaConf composition error as one ConfigError line naming the key."""
    text = str(exc)
    if m := re.search(r"Could not override '([^']+)'\. No match in the defaults list", text):
        group = m[1]
        given = next((o for o in overrides or [] if o.startswith(f"{group}=")), group)
        parent, _, sub = group.rpartition("/")
        return ConfigError(
            f"{given} is not allowed: the chosen {parent or 'config'} has no "
            f"{sub!r} settings (e.g. method/ga and method/bounds belong to dpg_ga)"
        )
    if isinstance(exc, MissingConfigException):
        missing = str(getattr(exc, "missing_cfg_file", "") or "")
        group, _, name = missing.rpartition("/")
        if group:
            allowed = ", ".join(group_options(group)) or "(none)"
            return ConfigError(f"{group}={name} is not allowed: expected one of {allowed}")
        return ConfigError(str(exc).splitlines()[0])
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, OmegaConfBaseException):
        key = getattr(cause, "full_key", None) or ""
        msg = str(getattr(cause, "msg", cause)).splitlines()[0]
        if isinstance(cause, (ConfigKeyError, ConfigAttributeError)) and key:
            return ConfigError(_unknown_key(key, getattr(cause, "parent_node", None)))
        return ConfigError(f"{key}: {msg}" if key else msg)
    return ConfigError(str(exc).splitlines()[0])


#: old spellings (the GA settings and the class-bound miner now belong to method dpg_ga)
RENAMED = (
    ("ga=", "method/ga="),
    ("ga.", "method.ga."),
    ("constraints=", "method/bounds="),
    ("constraints.", "method.bounds."),
)


def old_spelling(overrides: list[str]) -> None:
    """One line naming the new spelling for an override in an old one (``ga=quick``)."""
    for o in overrides:
        bare = o.lstrip("+~")
        for old, new in RENAMED:
            if bare.startswith(old):
                raise ConfigError(
                    f"{o}: the GA settings and the class-bound miner belong to the "
                    f"method now: use {o[: len(o) - len(bare)]}"
                    f"{new}{bare[len(old) :]}"
                )


def split_argv(argv: list[str]) -> tuple[list[str], list[Path], bool] | None:
    """(overrides, extra config dirs, multirun?) of a command line; ``None`` when Hydra's own
    flags (--help, --cfg, --info, --config-name, ...) ask for something else than a run."""
    overrides: list[str] = []
    dirs: list[Path] = []
    multirun = False
    it = iter(argv)
    for a in it:
        if a in ("-m", "--multirun"):
            multirun = True
        elif a in ("--config-dir", "-cd"):
            dirs.append(Path(next(it, "")).resolve())
        elif a.startswith("--config-dir="):
            dirs.append(Path(a.split("=", 1)[1]).resolve())
        elif a.startswith("-"):
            return None
        else:
            overrides.append(a)
    return overrides, dirs, multirun


def _compose(compose_fn: Any, trial: list[str]) -> Any:
    """``compose_fn(trial)`` with Hydra's and OmegaConf's composition errors as one line."""
    try:
        return compose_fn(trial)
    except (ConfigCompositionException, MissingConfigException) as exc:
        raise translate(exc, trial) from None
    except OmegaConfBaseException as exc:
        raise translate(ConfigCompositionException(str(exc)).with_traceback(None)) from exc


def _parse(overrides: list[str]) -> list[list[str]]:
    try:
        return list(_expand(overrides))
    except OverrideParseException as exc:
        raise ConfigError(f"cannot parse overrides: {str(exc).splitlines()[0]}") from None


def precheck(argv: list[str]) -> Any:
    """Compose the config for the given overrides (every sweep value) and validate it; then
    check (and, for a fixed ``hydra.run.dir``, lock) where the run will write. Returns the lock
    (keep it referenced while the app runs) or ``None``."""
    from cfgen.rundir import prepare_configured

    parts = split_argv(argv)
    if parts is None:
        return None
    overrides, dirs, multirun = parts
    EXTRA_DIRS[:] = dirs
    old_spelling(overrides)
    if dirs:
        overrides = [*overrides, "hydra.searchpath=[" + ",".join(f"file://{d}" for d in dirs) + "]"]
    register()
    combos = _parse(overrides)
    GlobalHydra.instance().clear()
    first = None
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        for trial in combos:
            hydra_node = first is None
            cfg = _compose(
                lambda t, h=hydra_node: compose(
                    config_name=CONFIG_NAME, overrides=t, return_hydra_config=h
                ),
                trial,
            )
            validate(cfg)
            check_tracking(cfg)
            first = cfg if first is None else first
    GlobalHydra.instance().clear()
    if multirun:  # a Slurm launcher's settings, asked of sbatch --test-only
        precheck_launcher(combos[0], CONF_DIR, CONFIG_NAME)
    return prepare_configured(first, multirun)


class PreparedRun:
    """A single run's config, composed once the way ``@hydra.main`` composes it and validated;
    :meth:`run` hands it to Hydra's ``run_job`` (output directory, ``.hydra/``, logging) without
    composing it again. ``lock``: the run directory's lock
    (:func:`cfgen.rundir.prepare_configured`), released by :meth:`run`."""

    def __init__(self, hydra: Any, cfg: Any, overrides: list[str], lock: Any) -> None:
        self.hydra, self.cfg, self.overrides, self.lock = hydra, cfg, overrides, lock

    def run(self, task_function: Any) -> None:
        """What ``Hydra.run`` does after composing: callbacks around ``run_job``; an error the
        task raises is reported the way ``@hydra.main`` reports it."""
        from hydra._internal.callbacks import Callbacks
        from hydra._internal.utils import run_and_report
        from hydra.core.utils import configure_log, run_job
        from hydra.types import HydraContext, RunMode

        cfg = self.cfg

        def job() -> None:
            # Hydra.compose_config(with_log_configuration=True), without composing again
            configure_log(cfg.hydra.hydra_logging, cfg.hydra.verbose)
            hydra_module = sys.modules[type(self.hydra).__module__]
            if hasattr(hydra_module, "log") and hasattr(self.hydra, "_print_debug_info"):
                hydra_module.log = logging.getLogger(hydra_module.__name__)  # type: ignore[attr-defined]
                self.hydra._print_debug_info(CONFIG_NAME, self.overrides, RunMode.RUN)
            if cfg.hydra.mode is None:
                cfg.hydra.mode = RunMode.RUN
            callbacks = Callbacks(cfg)
            callbacks.on_run_start(config=cfg, config_name=CONFIG_NAME)
            ret = run_job(
                hydra_context=HydraContext(
                    config_loader=self.hydra.config_loader, callbacks=callbacks
                ),
                task_function=task_function,
                config=cfg,
                job_dir_key="hydra.run.dir",
                job_subdir_key=None,
                configure_logging=True,
            )
            callbacks.on_run_end(config=cfg, config_name=CONFIG_NAME, job_return=ret)
            _ = ret.return_value  # raises what the task raised

        try:
            run_and_report(job)
        finally:
            GlobalHydra.instance().clear()
            if self.lock is not None:
                self.lock.release()


def prepare_run(argv: list[str], task_function: Any, on_composed: Any = None) -> PreparedRun | None:
    """A single run (no ``-m``, no Hydra flag): its config composed once, as ``@hydra.main``
    would compose it for ``task_function`` (same search path, task name and overrides), then
    validated like :func:`precheck` does (one :class:`ConfigError` line on bad input) and its
    run directory locked. ``on_composed(cfg)`` is called as soon as the config is composed,
    before the validation (which imports the model's class): e.g. to start the forkserver.
    ``None`` when ``argv`` asks for something else (a sweep, ``--help``, ``--cfg``, an
    explicit ``hydra.mode``): :func:`precheck` and ``@hydra.main`` handle those."""
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import (
        create_automatic_config_search_path,
        detect_calling_file_or_module_from_task_function,
        detect_task_name,
    )
    from hydra.core.config_search_path import SearchPathQuery
    from hydra.types import RunMode

    from cfgen.rundir import prepare_configured

    parts = split_argv(argv)
    if parts is None or parts[2]:
        return None
    overrides, dirs, _ = parts
    if any(o.lstrip("+~").startswith("hydra.mode") for o in overrides):
        return None
    EXTRA_DIRS[:] = dirs
    old_spelling(overrides)
    register()
    _parse(overrides)
    for d in dirs:
        if not d.is_dir():
            raise ConfigError(f"--config-dir {d}: no such directory")
    calling_file, calling_module = detect_calling_file_or_module_from_task_function(task_function)
    search_path = create_automatic_config_search_path(calling_file, calling_module, str(CONF_DIR))
    for d in dirs:  # as @hydra.main adds --config-dir
        search_path.prepend(
            provider="command-line", path=f"file://{d}", anchor=SearchPathQuery(provider="schema")
        )
    GlobalHydra.instance().clear()
    hydra = Hydra.create_main_hydra2(
        task_name=detect_task_name(calling_file, calling_module), config_search_path=search_path
    )
    try:
        # @hydra.main adds hydra.mode=RUN when the config does not set a mode
        trial = [*overrides, "hydra.mode=RUN"]
        cfg = _compose(
            lambda t: hydra.compose_config(
                config_name=CONFIG_NAME, overrides=t, run_mode=RunMode.RUN
            ),
            trial,
        )
        if on_composed is not None:
            on_composed(cfg)
        validate(cfg)
        check_tracking(cfg)
        lock = prepare_configured(cfg, False)
    except BaseException:
        GlobalHydra.instance().clear()
        raise
    return PreparedRun(hydra, cfg, trial, lock)
