"""Build the configured counterfactual method behind the ``Explainer`` interface."""

from __future__ import annotations

from cfgen.constraints import ClassBounds
from cfgen.data import Dataset
from cfgen.errors import ConfigError
from cfgen.explanation import Explainer
from cfgen.models import FittedModel
from cfgen.schema import FeatureSchema


def build_explainer(
    method: str,
    ga_cfg,
    model: FittedModel,
    data: Dataset,
    bounds: ClassBounds | None,
    schema: FeatureSchema | None = None,
) -> Explainer:
    """The explainer for ``method`` with the actionability rules of ``schema`` (default: data's)."""
    schema = schema or data.schema
    if method == "dpg_ga":
        from cfgen.search import GAParams, GeneticExplainer

        return GeneticExplainer(
            model.estimator, model.predictor, schema, data.X_train, data.y_train, bounds,
            GAParams.from_config(ga_cfg),
        )
    if method.startswith("dice_"):
        from cfgen.baselines.dice import DiceExplainer

        return DiceExplainer(model.estimator, data, schema, method=method.removeprefix("dice_"))
    raise ConfigError(f"method.name={method!r} is not allowed")
