"""Command-line helpers: compose-time checks of overrides, and one-line error reports."""

from __future__ import annotations

import difflib
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


def _unknown_key(key: str) -> str:
    """'x.y is not a config key' with the keys allowed there and the closest match."""
    from cfgen.config import Config

    parent, _, name = key.rpartition(".")
    node = OmegaConf.structured(Config)
    allowed: list[str] = []
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
            return ConfigError(_unknown_key(key))
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
    try:
        combos = list(_expand(overrides))
    except OverrideParseException as exc:
        raise ConfigError(f"cannot parse overrides: {str(exc).splitlines()[0]}") from None
    GlobalHydra.instance().clear()
    first = None
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        for trial in combos:
            try:
                cfg = compose(
                    config_name=CONFIG_NAME, overrides=trial, return_hydra_config=first is None
                )
            except (ConfigCompositionException, MissingConfigException) as exc:
                raise translate(exc, trial) from None
            except OmegaConfBaseException as exc:
                raise translate(ConfigCompositionException(str(exc)).with_traceback(None)) from exc
            validate(cfg)
            check_tracking(cfg)
            first = cfg if first is None else first
    GlobalHydra.instance().clear()
    if multirun:  # a Slurm launcher's settings, asked of sbatch --test-only
        precheck_launcher(combos[0], CONF_DIR, CONFIG_NAME)
    return prepare_configured(first, multirun)
