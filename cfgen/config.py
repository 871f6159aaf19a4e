"""Structured configs (registered in Hydra's ConfigStore) and their semantic validation.

The dataclasses give Hydra the schema: an unknown key or a wrongly typed value is rejected at
compose time. :func:`validate` adds the checks a type cannot express (positive sizes, known
names, ranges) and raises :class:`~cfgen.errors.ConfigError` naming the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig

from cfgen.errors import ConfigError
from cfgen.schema import RULE_NAMES


@dataclass
class DatasetConfig:
    """Where a dataset lives and how to read it."""

    name: str = MISSING
    source: str = "csv"  # csv | sklearn
    file: str | None = None  # CSV file name inside the data directory
    target: str = MISSING
    sep: str = ","
    categorical: List[str] = field(default_factory=list)
    integer: List[str] | None = None  # null: infer from integer-valued columns
    drop: List[str] = field(default_factory=list)
    date_columns: List[str] = field(default_factory=list)
    zero_as_missing: List[str] = field(default_factory=list)
    missing: str = "drop"  # drop | median
    actionability: Dict[str, str] = field(default_factory=dict)
    test_size: float = 0.2
    split_seed: int = 42


@dataclass
class ModelConfig:
    """A scikit-learn classifier built with ``hydra.utils.instantiate``."""

    _target_: str = "sklearn.ensemble.RandomForestClassifier"
    n_estimators: int = 100
    max_depth: int | None = None
    max_features: Any = "sqrt"
    min_impurity_decrease: float = 0.0
    min_samples_split: int = 2
    criterion: str = "gini"
    random_state: int = 42
    n_jobs: int | None = 1


@dataclass
class ConstraintsConfig:
    """Class-bound miner settings."""

    mode: str = "dpg"  # dpg | paths | mass | none
    decimal_threshold: int | None = 3
    perc_var: float = 1e-7
    mass: float = 0.9


@dataclass
class GAConfig:
    """Genetic search settings and fitness weights (see conf/ga/default.yaml)."""

    population_size: int = 30
    max_generations: int = 10
    crossover_prob: float = 0.7
    mutation_prob: float = 0.3
    mutation_gene_prob: float = 0.3
    tournament_size: int = 3
    elite: int = 2
    init_change_prob: float = 0.5
    bounds_init_prob: float = 0.7
    patience: int = 2
    delta_threshold: float = 0.01
    w_distance: float = 1.0
    w_sparsity: float = 0.5
    w_plausibility: float = 0.2
    w_bounds: float = 0.3
    w_diversity: float = 0.1
    refine: bool = True
    anchors: int = 20
    anchor_init_share: float = 0.25
    dense_init_share: float = 0.25
    reset_prob: float = 0.4
    mutation_max_genes: int = 4
    reference_rows: int = 64
    pool_size: int = 16
    plausibility_steps: int = 4
    w_final_plausibility: float = 1.5


@dataclass
class MethodConfig:
    """Which counterfactual method explains the queries."""

    name: str = "dpg_ga"  # dpg_ga | dice_random | dice_genetic | dice_kdtree
    time_limit: float | None = None  # seconds per query; null = no limit


@dataclass
class LoggerConfig:
    """Experiment tracking."""

    name: str = "none"  # none | wandb
    mode: str | None = None  # online | offline | disabled (null: offline without API key)
    project: str = "cfgen"
    entity: str | None = None
    tags: List[str] = field(default_factory=list)
    group: str | None = None  # null: the multirun directory in a sweep, none for single runs
    init_timeout: float = 60.0  # seconds wandb.init may take online before it falls back offline


@dataclass
class ExperimentParams:
    """What to explain and how often."""

    seed: int = 42
    num_samples: int = 3
    sample_indices: List[int] | None = None  # test-row positions; null: draw num_samples
    target_class: int | None = None  # null: every class other than the predicted one
    num_counterfactuals: int = 5
    num_replications: int = 3
    parallel_replications: bool = True
    max_workers: int | None = None  # null: usable CPUs - 1 (at least 1)
    rules: List[str] = field(default_factory=lambda: ["none"])
    num_combinations_to_test: int | None = None  # null: half of all combinations, >= 1
    resume: bool = False


@dataclass
class MetricsConfig:
    """How counterfactual quality is measured."""

    compat: str = "cfgen"  # cfgen (corrected definitions) | ece (the original cf_eval ones)


@dataclass
class OutputConfig:
    """What a run writes besides its results."""

    plots: bool = False
    table: bool = True


@dataclass
class Config:
    """The whole experiment."""

    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    constraints: ConstraintsConfig = field(default_factory=ConstraintsConfig)
    ga: GAConfig = field(default_factory=GAConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    experiment_params: ExperimentParams = field(default_factory=ExperimentParams)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    output: OutputConfig = field(default_factory=OutputConfig)


def register() -> None:
    """Register the schema so ``conf/config.yaml`` can list ``cfgen_schema`` first."""
    cs = ConfigStore.instance()
    cs.store(name="cfgen_schema", node=Config)


METHODS = ("dpg_ga", "dice_random", "dice_genetic", "dice_kdtree")
CONSTRAINT_MODES = ("dpg", "paths", "mass", "none")
MISSING_POLICIES = ("drop", "median")
LOGGERS = ("none", "wandb")
LOGGER_MODES = ("online", "offline", "disabled")


def _positive(cfg: DictConfig, key: str, allow_zero: bool = False) -> None:
    section, name = key.split(".")
    value = cfg[section][name]
    if value is None:
        return
    ok = value >= 0 if allow_zero else value > 0
    if not ok:
        need = "an integer >= 0" if allow_zero else "a positive number"
        raise ConfigError(f"{key}={value!r} is not allowed: expected {need}")


def _one_of(key: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{key}={value!r} is not allowed: expected one of {', '.join(allowed)}")


def validate(cfg: DictConfig) -> None:
    """Checks that types alone cannot express. Raises ConfigError naming the key."""
    for key in (
        "experiment_params.num_samples",
        "experiment_params.num_counterfactuals",
        "experiment_params.num_replications",
        "experiment_params.max_workers",
        "experiment_params.num_combinations_to_test",
        "ga.population_size",
        "ga.max_generations",
        "ga.tournament_size",
        "ga.patience",
        "model.n_estimators",
    ):
        _positive(cfg, key)
    _positive(cfg, "ga.elite", allow_zero=True)
    for key in ("crossover_prob", "mutation_prob", "mutation_gene_prob", "init_change_prob",
                "bounds_init_prob", "anchor_init_share", "dense_init_share", "reset_prob"):
        value = cfg.ga[key]
        if not 0.0 <= value <= 1.0:
            raise ConfigError(
                f"ga.{key}={value!r} is not allowed: expected a probability in [0, 1]"
            )
    shares = cfg.ga.anchor_init_share + cfg.ga.dense_init_share
    if shares > 1.0:
        raise ConfigError(
            f"ga.anchor_init_share + ga.dense_init_share = {shares:g} is not allowed: expected <= 1"
        )
    for key in ("pool_size", "mutation_max_genes"):
        _positive(cfg, f"ga.{key}")
    for key in ("anchors", "reference_rows", "plausibility_steps"):
        _positive(cfg, f"ga.{key}", allow_zero=True)
    for key in ("w_distance", "w_sparsity", "w_plausibility", "w_bounds", "w_diversity",
                "w_final_plausibility", "delta_threshold"):
        if cfg.ga[key] < 0:
            raise ConfigError(f"ga.{key}={cfg.ga[key]!r} is not allowed: expected >= 0")
    if cfg.ga.elite >= cfg.ga.population_size:
        raise ConfigError(
            f"ga.elite={cfg.ga.elite} is not allowed: expected fewer than "
            f"ga.population_size={cfg.ga.population_size}"
        )
    if not 0.0 < cfg.dataset.test_size < 1.0:
        raise ConfigError(
            f"dataset.test_size={cfg.dataset.test_size!r} is not allowed: expected (0, 1)"
        )
    _one_of("method.name", cfg.method.name, METHODS)
    _one_of("constraints.mode", cfg.constraints.mode, CONSTRAINT_MODES)
    _one_of("dataset.missing", cfg.dataset.missing, MISSING_POLICIES)
    _one_of("dataset.source", cfg.dataset.source, ("csv", "sklearn"))
    _one_of("logger.name", cfg.logger.name, LOGGERS)
    _one_of("metrics.compat", cfg.metrics.compat, ("cfgen", "ece"))
    if cfg.logger.mode is not None:
        _one_of("logger.mode", cfg.logger.mode, LOGGER_MODES)
    if cfg.method.time_limit is not None and cfg.method.time_limit <= 0:
        raise ConfigError(
            f"method.time_limit={cfg.method.time_limit!r} is not allowed: expected > 0"
        )
    for rule in cfg.experiment_params.rules:
        _one_of("experiment_params.rules", rule, RULE_NAMES)
    if not cfg.experiment_params.rules:
        raise ConfigError("experiment_params.rules=[] is not allowed: expected at least one rule")
    for feature, rule in cfg.dataset.actionability.items():
        _one_of(f"dataset.actionability.{feature}", rule, RULE_NAMES)
