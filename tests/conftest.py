"""Shared fixtures: composing real configs and running the real pipeline."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from cfgen.cli import CONF_DIR
from cfgen.config import register
from cfgen.data import data_dir
from cfgen.datasets import open_dict_overrides
from cfgen.models import model_overrides

os.environ.setdefault("CFGEN_DATA_DIR", str(data_dir()))


def compose_config(overrides: list[str] | None = None):
    """The config ``python -m cfgen <overrides>`` would run."""
    register()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config",
                       overrides=model_overrides(open_dict_overrides(overrides or [])))


# small and fast defaults for tests; each test adds what it checks
FAST = [
    "method/ga=quick",
    "experiment_params.num_samples=2",
    "experiment_params.num_replications=2",
    "experiment_params.parallel_replications=false",
    "output.table=false",
]


def _fast(extra: tuple[str, ...]) -> list[str]:
    """FAST, without the GA override when another method (no ``ga`` settings) is chosen."""
    method = next((e.split("=", 1)[1] for e in extra if e.startswith("method=")), "dpg_ga")
    return [f for f in FAST if method.startswith("dpg_ga") or not f.startswith("method/ga")]


@pytest.fixture
def cfg_factory():
    return lambda *extra: compose_config([*_fast(extra), *extra])


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    path = data_dir()
    assert path.is_dir(), f"datasets not found at {path}: set CFGEN_DATA_DIR"
    return path
