"""Structured configs: every setting's type and range declared once, checked by one validator.

The dataclasses are Hydra's schema (registered in the ConfigStore as ``cfgen_schema``) and the
library API's: a field's type is its type, and ``setting(default, ge=..., choices=...)`` puts
its range into the field's metadata. :func:`check_node` is the one validator: it rejects an
unknown key (however it was added, ``+`` included), a wrong type and a value out of range with
one :class:`~cfgen.errors.ConfigError` naming the key. The CLI, the sweep precheck, the run and
the API (``ga={...}``) all call it.

The ``model`` and ``method`` nodes are plug-ins (``_target_``): ``model`` keeps whatever keyword
arguments its estimator takes (checked when it is built); a method's own settings are checked
against its class (:func:`cfgen.methods.check_method`).
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Union, get_args, get_origin, get_type_hints

from omegaconf import MISSING

from cfgen.errors import ConfigError
from cfgen.schema import RULE_NAMES


def setting(
    default: Any = MISSING,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    choices: tuple[Any, ...] | None = None,
    factory: Any = None,
) -> Any:
    """A dataclass field whose allowed range lives in its metadata (read by :func:`check_node`)."""
    meta = {
        k: v for k, v in dict(ge=ge, gt=gt, le=le, lt=lt, choices=choices).items() if v is not None
    }
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


# ----------------------------------------------------------------------------- data and model
@dataclass
class DatasetConfig:
    """Where a dataset lives and how to read it (``cfgen/conf/dataset/``; docs/datasets.md)."""

    name: str = MISSING
    source: str = setting("csv", choices=("csv", "sklearn"))
    file: str | None = None  # a path, or a file name in $CFGEN_DATA_DIR / the shipped copies
    target: str = MISSING
    sep: str = ","  # any separator; TAB (or \t) for tab-separated files
    categorical: List[str] = setting(factory=list)
    integer: List[str] | None = None  # null: infer from integer-valued columns
    drop: List[str] = setting(factory=list)
    date_columns: List[str] = setting(factory=list)
    zero_as_missing: List[str] = setting(factory=list)
    missing: str = setting("drop", choices=("drop", "median"))
    actionability: Dict[str, str] = setting(factory=dict)
    test_size: float = setting(0.2, gt=0.0, lt=1.0)
    split_seed: int = setting(42, ge=0)
    ranges: Dict[str, Any] = setting(factory=dict)  # feature: [low, high] it may move to
    features_to_vary: List[str] | None = None  # null: all; else every other one is no_change
    coerce_numeric: bool = False  # text cells in a numeric column: false = error, true = missing
    drop_id_columns: bool = False  # drop id-like columns (unique per row), with a logged note
    encoding: str = "utf-8"  # text encoding of the file


# ----------------------------------------------------------------------------- dpg_ga settings
@dataclass
class BoundsConfig:
    """How the class bounds guiding the genetic search are mined (``method.bounds``)."""

    mode: str = setting("auto", choices=("auto", "dpg", "paths", "mass", "none"))
    decimal_threshold: int | None = setting(3, ge=0)
    perc_var: float = setting(1e-7, ge=0.0)
    mass: float = setting(0.9, gt=0.0, le=1.0)


@dataclass
class OperatorsConfig:
    """Which operator DEAP's toolbox gets for each step (``vectorised``: cfgen's array ops)."""

    mate: str = "vectorised"  # or a deap.tools crossover: cxBlend, cxUniform, cxTwoPoint, ...
    mate_args: Dict[str, Any] | None = None  # keyword arguments of that operator
    mutate: str = "vectorised"  # or a deap.tools mutation: mutGaussian, mutPolynomialBounded, ...
    mutate_args: Dict[str, Any] | None = None  # keyword arguments of that operator
    select: str = "vectorised"  # or a deap.tools selection: selTournament, selBest, ...
    select_args: Dict[str, Any] | None = None  # keyword arguments of that operator


@dataclass
class GAConfig:
    """Genetic search settings and fitness weights (``method.ga``; terms are in MAD units)."""

    population_size: int = setting(30, ge=2, le=100_000)
    max_generations: int = setting(10, ge=1)
    crossover_prob: float = setting(0.7, ge=0.0, le=1.0)
    mutation_prob: float = setting(0.3, ge=0.0, le=1.0)
    mutation_gene_prob: float = setting(0.3, ge=0.0, le=1.0)
    tournament_size: int = setting(3, ge=1)
    elite: int = setting(2, ge=0)
    init_change_prob: float = setting(0.5, ge=0.0, le=1.0)
    bounds_init_prob: float = setting(0.7, ge=0.0, le=1.0)
    patience: int = setting(2, ge=1)
    delta_threshold: float = setting(0.01, ge=0.0)
    w_distance: float = setting(1.0, ge=0.0)
    w_sparsity: float = setting(0.5, ge=0.0)
    w_plausibility: float = setting(0.2, ge=0.0)
    w_bounds: float = setting(0.3, ge=0.0)
    w_diversity: float = setting(0.1, ge=0.0)
    refine: bool = True
    anchors: int = setting(20, ge=0)
    anchor_init_share: float = setting(0.25, ge=0.0, le=1.0)
    dense_init_share: float = setting(0.25, ge=0.0, le=1.0)
    reset_prob: float = setting(0.4, ge=0.0, le=1.0)
    mutation_max_genes: int = setting(4, ge=1)
    reference_rows: int = setting(64, ge=0)
    pool_size: int = setting(16, ge=1)
    plausibility_steps: int = setting(4, ge=0)
    w_final_plausibility: float = setting(1.5, ge=0.0)
    flip_beam: int = setting(48, ge=0)  # split-flip search for the closest (0: off)
    flip_layers: int = setting(12, ge=1)  # flips per path of that search at most
    flip_restarts: int = setting(2, ge=0)  # rounds: polish, search again with one change undone
    plausible_rows: int = setting(16, ge=0)  # target rows nearest the actionable box, as candidates
    diverse_shortlist: int = setting(40, ge=1)  # NSGA-II-ranked rows diverse members come from
    operators: OperatorsConfig = setting(factory=OperatorsConfig)

    def check_relations(self, prefix: str) -> None:
        """Checks between fields (one line each, naming the keys)."""
        shares = self.anchor_init_share + self.dense_init_share
        if shares > 1.0:
            raise ConfigError(
                f"{prefix}.anchor_init_share + {prefix}.dense_init_share = "
                f"{shares:g} is not allowed: expected <= 1"
            )
        if self.elite >= self.population_size:
            raise ConfigError(
                f"{prefix}.elite={self.elite} is not allowed: expected fewer than "
                f"{prefix}.population_size={self.population_size}"
            )


# ----------------------------------------------------------------------------- the rest
@dataclass
class LoggerConfig:
    """Experiment tracking."""

    name: str = setting("none", choices=("none", "wandb"))
    mode: str | None = setting(None, choices=("online", "offline", "disabled"))
    project: str = "cfgen"
    entity: str | None = None
    tags: List[str] = setting(factory=list)
    group: str | None = None  # null: the multirun directory in a sweep, none for single runs
    init_timeout: float = setting(60.0, gt=0.0)


@dataclass
class SlurmExecutorConfig:
    """experiment_params.slurm: the job array of experiment_params.executor=slurm."""

    partition: str | None = None  # sbatch --partition; null: the cluster's default
    time_min: int = setting(60, ge=1)  # wall-time limit of each array task, minutes
    cpus_per_task: int = setting(1, ge=1)  # CPUs of each array task (> 1: a process pool inside)
    mem_gb: float = setting(2.0, gt=0)  # memory of each array task, GB
    max_parallel: int = setting(64, ge=1)  # array tasks running at once
    chunk_seconds: float = setting(60.0, gt=0)  # target work per array task (measured cost)
    max_array_tasks: int = setting(1000, ge=1)  # at most this many (Slurm's MaxArraySize: 1001)
    account: str | None = None  # sbatch --account
    qos: str | None = None  # sbatch --qos
    setup: List[str] = setting(factory=list)  # shell lines first, e.g. "module load python"
    poll_seconds: float = setting(5.0, gt=0)  # how often the run reads segments and asks sacct
    additional_parameters: Dict[str, Any] = setting(factory=dict)  # other sbatch options


@dataclass
class ExperimentParams:
    """What to explain and how often."""

    seed: int = setting(42, ge=0)
    num_samples: int = setting(3, ge=1)
    sample_indices: List[int] | None = None  # test-row positions; null: draw num_samples
    target_class: Any | None = None  # null: every other class; a class index or label
    queries: Any | None = None  # null: test rows; a CSV path of rows or source-file row ids
    num_counterfactuals: int = setting(5, ge=1)
    num_replications: int = setting(3, ge=1)
    parallel_replications: bool = True
    max_workers: int | None = setting(
        None, ge=1
    )  # null: a pool only when it pays (docs/parallel.md)
    rules: List[str] = setting(factory=lambda: ["none"])
    num_combinations_to_test: int | None = setting(None, ge=1)
    resume: bool = False
    executor: str = setting("process", choices=("process", "local", "slurm"))
    slurm: SlurmExecutorConfig = setting(factory=SlurmExecutorConfig)

    def check_relations(self, prefix: str) -> None:
        if not self.rules:
            raise ConfigError(f"{prefix}.rules=[] is not allowed: expected at least one rule")
        for rule in self.rules:
            if rule not in RULE_NAMES:
                raise ConfigError(
                    f"{prefix}.rules={list(self.rules)} is not allowed: "
                    f"{rule!r} is not one of {', '.join(RULE_NAMES)}"
                )
        if self.sample_indices is not None:
            if not self.sample_indices:
                raise ConfigError(
                    f"{prefix}.sample_indices=[] is not allowed: expected null "
                    "(draw num_samples) or at least one test-row position"
                )
            dup = sorted({i for i in self.sample_indices if self.sample_indices.count(i) > 1})
            if dup:
                raise ConfigError(
                    f"{prefix}.sample_indices={list(self.sample_indices)} is not "
                    f"allowed: {dup} repeated (each query once)"
                )


@dataclass
class MetricsConfig:
    """How counterfactual quality is measured."""

    compat: str = setting("cfgen", choices=("cfgen", "ece"))


@dataclass
class OutputConfig:
    """What a run writes besides its results."""

    plots: bool = False
    table: bool = True
    show: int = setting(3, ge=0)  # queries printed as diff tables after the summary
    report_queries: int = setting(20, ge=0)  # query sections shown in report.html


@dataclass
class Config:
    """The whole experiment. ``model`` and ``method`` are ``_target_`` plug-ins."""

    dataset: DatasetConfig = setting(factory=DatasetConfig)
    model: Any = MISSING
    method: Any = MISSING
    logger: LoggerConfig = setting(factory=LoggerConfig)
    experiment_params: ExperimentParams = setting(factory=ExperimentParams)
    metrics: MetricsConfig = setting(factory=MetricsConfig)
    output: OutputConfig = setting(factory=OutputConfig)


def register() -> None:
    """Register the schema so ``conf/config.yaml`` can list ``cfgen_schema`` first, and the
    resolvers the configs use (``${cfgen.stem:...}``)."""
    from hydra.core.config_store import ConfigStore

    from cfgen.datasets import register_resolvers

    ConfigStore.instance().store(name="cfgen_schema", node=Config)
    register_resolvers()


# ----------------------------------------------------------------------------- the validator
def _allowed_text(meta: Mapping[str, Any]) -> str:
    if "choices" in meta:
        return "one of " + ", ".join(str(c) for c in meta["choices"])
    parts = [
        f"{op} {meta[k]:g}"
        for k, op in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))
        if k in meta
    ]
    return " and ".join(parts)


def _in_range(value: Any, meta: Mapping[str, Any]) -> bool:
    if "choices" in meta:
        return value in meta["choices"]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return True  # types are checked separately
    return not (
        ("ge" in meta and value < meta["ge"])
        or ("gt" in meta and value <= meta["gt"])
        or ("le" in meta and value > meta["le"])
        or ("lt" in meta and value >= meta["lt"])
    )


def _type_ok(value: Any, tp: Any) -> bool:
    """Does ``value`` fit the annotation ``tp`` (the subset of typing the schemas use)."""
    origin = get_origin(tp)
    if tp is Any or value is MISSING:
        return True
    if origin is Union:
        return any(_type_ok(value, a) for a in get_args(tp))
    if tp is type(None):
        return value is None
    if origin in (list, List):
        (item,) = get_args(tp) or (Any,)
        return isinstance(value, (list, tuple)) and all(_type_ok(v, item) for v in value)
    if origin in (dict, Dict):
        return isinstance(value, Mapping)
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return isinstance(value, (Mapping, tp))
    return True


def _type_name(tp: Any) -> str:
    if get_origin(tp) is Union:
        return " or ".join(_type_name(a) for a in get_args(tp))
    if tp is type(None):
        return "null"
    if get_origin(tp) in (list, List):
        return f"a list of {_type_name((get_args(tp) or (Any,))[0])}"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def unknown_key(prefix: str, key: str, allowed: list[str]) -> ConfigError:
    """One line: ``prefix.key`` is not a config key, the closest match and the keys there."""
    full = f"{prefix}.{key}" if prefix else key
    hint = difflib.get_close_matches(key, allowed, n=1)
    msg = f"{full} is not a config key (however it is added, + included)"
    if hint:
        msg += f"; did you mean {prefix + '.' if prefix else ''}{hint[0]}?"
    if allowed:
        msg += f"; keys under {prefix or 'the root'}: {', '.join(allowed)}"
    return ConfigError(msg)


def _plain(node: Any) -> Any:
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(node, (DictConfig, ListConfig)):
        return OmegaConf.to_container(node, resolve=True)
    return node


def check_node(node: Any, schema: type, prefix: str, skip: tuple[str, ...] = ()) -> Any:
    """Validate a mapping against a dataclass schema; return the dataclass instance.

    Unknown keys, wrong types and out-of-range values raise one ConfigError naming
    ``prefix.key``; missing keys keep their defaults. Nested dataclass fields recurse.
    """
    values = _plain(node)
    if isinstance(values, schema) and not isinstance(values, type):
        values = dataclasses.asdict(values)  # type: ignore[call-overload]
    if not isinstance(values, Mapping):
        raise ConfigError(
            f"{prefix}={values!r} is not allowed: expected a mapping of {schema.__name__} keys"
        )
    hints = get_type_hints(schema)
    fields = {f.name: f for f in dataclasses.fields(schema)}
    for key in values:
        if key not in fields and key not in skip:
            raise unknown_key(prefix, str(key), list(fields))
    out: dict[str, Any] = {}
    for name, f in fields.items():
        if name not in values:
            continue
        value, tp, full = values[name], hints[name], f"{prefix}.{name}" if prefix else name
        if dataclasses.is_dataclass(tp) and isinstance(value, Mapping):
            out[name] = check_node(value, tp, full)  # type: ignore[arg-type]
            continue
        if not _type_ok(value, tp):
            raise ConfigError(f"{full}={value!r} is not allowed: expected {_type_name(tp)}")
        if (
            isinstance(value, int)
            and not isinstance(value, bool)
            and _type_ok(1.5, tp)
            and not _type_ok("x", tp)
        ):
            value = float(value) if tp is float else value
        if value is not None and not _in_range(value, f.metadata):
            raise ConfigError(
                f"{full}={value!r} is not allowed: expected {_allowed_text(f.metadata)}"
            )
        out[name] = value
    obj = schema(**out)
    relations = getattr(obj, "check_relations", None)
    if relations is not None:
        relations(prefix)
    return obj


def check_rules(actionability: Mapping[str, Any], prefix: str) -> None:
    for feature, rule in actionability.items():
        if rule not in RULE_NAMES:
            raise ConfigError(
                f"{prefix}.{feature}={rule!r} is not allowed: expected one of "
                f"{', '.join(RULE_NAMES)}"
            )


def validate(cfg: Any) -> None:
    """Check a composed config: every node against its schema, the plug-ins against theirs."""
    from cfgen.methods import check_method
    from cfgen.models import check_model_config

    values = {k: _plain(cfg[k]) for k in cfg if k != "hydra"}  # Hydra's own node: its business
    for key in values:
        if key not in {f.name for f in dataclasses.fields(Config)}:
            raise unknown_key("", str(key), [f.name for f in dataclasses.fields(Config)])
    for name, schema in (
        ("dataset", DatasetConfig),
        ("logger", LoggerConfig),
        ("experiment_params", ExperimentParams),
        ("metrics", MetricsConfig),
        ("output", OutputConfig),
    ):
        check_node(values.get(name, {}), schema, name)
    check_rules(values["dataset"].get("actionability", {}), "dataset.actionability")
    check_model_config(values.get("model"))
    check_method(values.get("method"), "method")
