"""Slurm launcher precheck: ``sbatch --test-only`` on the settings before anything is queued.

The sbatch script is built from submitit's own sbatch template, without constructing an
executor: submitit's ``SlurmExecutor`` refuses to exist where ``srun`` is missing, and the check
needs only ``sbatch`` (``--test-only`` never runs the script).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from cfgen.errors import ConfigError
from cfgen.sweep.forensics import _one_line

#: words of an sbatch error → the hydra.launcher key it is about
_SBATCH_KEYS = (
    ("partition", "partition"),
    ("account", "account"),
    ("qos", "qos"),
    ("time limit", "timeout_min"),
    ("memory", "mem_gb"),
    ("mem", "mem_gb"),
    ("cpu", "cpus_per_task"),
    ("processor", "cpus_per_task"),
    ("gres", "gres"),
    ("gpu", "gpus_per_node"),
    ("feature", "constraint"),
    ("constraint", "constraint"),
)
_RESOURCE_KEYS = (
    "cpus_per_task",
    "mem_gb",
    "mem_per_cpu",
    "gpus_per_node",
    "gres",
    "constraint",
    "nodes",
    "tasks_per_node",
)


def sbatch_script(launcher: dict, folder: str | Path) -> str:
    """The sbatch script hydra-submitit-launcher would submit for these ``hydra.launcher`` keys.

    Needs submitit but not Slurm: the executor class used here skips submitit's ``srun``
    detection, which would refuse to build a script on a machine without Slurm's binaries.
    """
    from submitit.slurm.slurm import SlurmExecutor

    class ScriptOnly(SlurmExecutor):
        @classmethod
        def affinity(cls) -> int:
            return 2  # pretend srun is there: the script is only shown to sbatch --test-only

    params = {
        k: v
        for k, v in launcher.items()  # None: not set (as submitit's AutoExecutor)
        if k not in ("_target_", "submitit_folder", "max_num_timeout") and v is not None
    }
    executor = ScriptOnly(folder=str(folder))
    executor.update_parameters(**executor._convert_parameters(params))
    return executor._make_submission_file_text("true", "precheck")


def test_only(script: str, timeout: float, what: str) -> tuple[int, str]:
    """``sbatch --test-only`` on ``script`` (nothing is queued): exit status and its output."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="cfgen-sbatch-") as tmp:
        path = Path(tmp) / "check.sh"
        path.write_text(script)
        try:
            proc = subprocess.run(
                ["sbatch", "--test-only", str(path)],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ConfigError(
                f"{what}: sbatch --test-only did not answer in {timeout:.0f} s (is slurmctld up?)"
            ) from None
    return proc.returncode, (proc.stderr or "") + "\n" + (proc.stdout or "")


def refusal(
    out: str, values: dict, prefix: str, what: str, rename: dict[str, str] | None = None
) -> ConfigError:
    """sbatch's refusal as one ConfigError naming the key (``prefix.key``) it is about;
    ``rename`` maps this module's key names (``timeout_min``, ...) to the caller's."""
    rename = rename or {}
    unreachable = [
        ln.strip() for ln in out.splitlines() if "fatal:" in ln or "unable to contact" in ln.lower()
    ]
    if unreachable:
        return ConfigError(f"{what}: Slurm is not reachable from this machine: {unreachable[-1]}")
    errors = [ln.strip() for ln in out.splitlines() if "error" in ln.lower()]
    message = errors[0] if errors else _one_line(out) or "sbatch refused the job"
    low = message.lower()
    if "node configuration" in low or "nodes available" in low:
        asked = [
            f"{prefix}.{rename.get(k, k)}={values[rename.get(k, k)]!r}"
            for k in _RESOURCE_KEYS
            if values.get(rename.get(k, k)) not in (None, "", {}, [])
        ]
        return ConfigError(f"{', '.join(asked)}: no Slurm node offers these resources: {message}")
    for word, key in _SBATCH_KEYS:
        if word in low:
            key = rename.get(key, key)
            return ConfigError(
                f"{prefix}.{key}={values.get(key)!r} is not accepted by Slurm: {message}"
            )
    return ConfigError(f"{what}: Slurm rejects the job settings: {message}")


def check_slurm_launcher(
    launcher: dict, timeout: float = 30.0, what: str = "hydra/launcher=submitit_slurm"
) -> None:
    """Ask Slurm (``sbatch --test-only``, nothing is queued) whether it accepts these settings.

    Raises ConfigError with sbatch's own error, naming the ``hydra.launcher`` key it is about
    (``what``: the launcher choice as the user gave it).
    """
    if shutil.which("sbatch") is None:
        raise ConfigError(
            f"{what} needs Slurm, but sbatch is not on PATH "
            "(use hydra/launcher=submitit_local or basic on this machine)"
        )
    launcher = dict(launcher, name=str(launcher.get("name") or "cfgen"))
    with tempfile_dir() as tmp:
        code, out = test_only(sbatch_script(launcher, tmp), timeout, what)
    if code != 0:
        raise refusal(out, launcher, "hydra.launcher", what)


def tempfile_dir():  # noqa: ANN201 - a TemporaryDirectory context
    import tempfile

    return tempfile.TemporaryDirectory(prefix="cfgen-sbatch-")


def precheck_launcher(overrides: list[str], conf_dir: str | Path, config_name: str) -> None:
    """``-m`` on a Slurm launcher: launcher settings Slurm would reject, as one ConfigError."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from cfgen.config import register

    register()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
            cfg = compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
    except Exception:  # noqa: BLE001 - composition errors are precheck's own business
        return
    finally:
        GlobalHydra.instance().clear()
    launcher = cfg.hydra.get("launcher")
    if launcher is None or not str(launcher.get("_target_", "")).endswith(".SlurmLauncher"):
        return
    settings = OmegaConf.to_container(launcher, resolve=False)
    assert isinstance(settings, dict)
    chosen = [o for o in overrides if o.lstrip("+~").startswith("hydra/launcher=")]
    check_slurm_launcher(
        {str(k): v for k, v in settings.items() if k not in ("submitit_folder", "name")},
        what=chosen[-1].lstrip("+~") if chosen else "hydra/launcher=submitit_slurm",
    )
