"""Build the configured counterfactual method behind the ``Explainer`` interface.

One function, :func:`build_explainer`, used by the Hydra app (through the launcher), by the
library API (:mod:`cfgen.api`) and by the benchmark, so all three run the same code.
"""

from __future__ import annotations

from cfgen.constraints import ClassBounds
from cfgen.data import Dataset
from cfgen.errors import ConfigError
from cfgen.explanation import Explainer
from cfgen.models import FittedModel
from cfgen.schema import FeatureSchema

METHODS: tuple[str, ...] = ("dpg_ga", "dice_random", "dice_genetic", "dice_kdtree")


def build_explainer(
    method: str,
    ga_cfg,
    model: FittedModel,
    data: Dataset,
    bounds: ClassBounds | None,
    schema: FeatureSchema | None = None,
    time_limit: float | None = None,
) -> Explainer:
    """The explainer for ``method`` with the actionability rules of ``schema`` (default: data's).

    ``ga_cfg`` is the ``ga`` config group (a mapping or :class:`~cfgen.search.GAParams`; ignored
    by DiCE). ``time_limit`` is seconds per query (``method.time_limit``; ``None``: none): the
    genetic search stops evolving and returns what it has, DiCE aborts the query and returns no
    counterfactuals with a reason.
    """
    schema = schema or data.schema
    if time_limit is not None and not time_limit > 0:
        raise ConfigError(f"method.time_limit={time_limit!r} is not allowed: expected > 0")
    if method == "dpg_ga":
        from cfgen.search import GAParams, GeneticExplainer

        params = ga_cfg if isinstance(ga_cfg, GAParams) else GAParams.from_config(ga_cfg or {})
        return GeneticExplainer(
            model.estimator, model.predictor, schema, data.X_train, data.y_train, bounds,
            params, time_limit=time_limit,
        )
    if method in ("dice_random", "dice_genetic", "dice_kdtree"):
        from cfgen.baselines.dice import DiceExplainer

        return DiceExplainer(model.estimator, data, schema, method=method.removeprefix("dice_"),
                             time_limit=time_limit)
    raise ConfigError(
        f"method.name={method!r} is not allowed: expected one of {', '.join(METHODS)}")
