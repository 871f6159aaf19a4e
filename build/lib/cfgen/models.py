"""The classifier to explain: built from ``cfg.model`` (any ``_target_``), checked, fitted.

``model=<preset>`` picks a file of ``cfgen/conf/model/``; ``model._target_=pkg.Class`` with its
own keyword arguments builds anything else. A model must be a fitted single-output classifier
with ``predict_proba``; anything else gets one line naming ``model`` (:func:`check_classifier`).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cfgen.errors import ConfigError

SUPPORTED = ("a fitted scikit-learn-compatible classifier with predict_proba and one output "
             "(e.g. a forest, boosted trees, XGBoost, LightGBM, or a Pipeline ending in one)")


def preprocessed(classifier: Any, categorical: Sequence[int] = (), scale: bool = True) -> Any:
    """A Pipeline for models that need it: standardise numeric columns, one-hot encode the
    categorical codes (cfgen's encoded space), then ``classifier``.

    The run passes ``categorical`` (the schema's categorical column positions), so the same
    preset works on every dataset.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    cat = [int(j) for j in categorical]
    steps = []
    if cat or scale:
        num_step: Any = StandardScaler() if scale else "passthrough"
        enc = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        prep = ColumnTransformer(
            [("categorical", enc, cat)] if cat else [],
            remainder=num_step, verbose_feature_names_out=False)
        steps.append(("prepare", prep))
    steps.append(("classifier", classifier))
    return Pipeline(steps)


def check_model_config(node: Any) -> None:
    """The ``model`` node names a class or function to build (``_target_``)."""
    if not isinstance(node, Mapping) or not isinstance(node.get("_target_"), str):
        raise ConfigError(f"model={node!r} is not allowed: expected model=<preset> (e.g. "
                          "random_forest, xgboost, logistic_regression) or a node with "
                          "model._target_=<dotted class> and its keyword arguments")


def build_estimator(model_cfg: Any, categorical: Sequence[int] = ()) -> Any:
    """Instantiate the (unfitted) estimator; ``categorical`` goes to targets that take it."""
    from hydra.errors import InstantiationException
    from hydra.utils import get_method, instantiate
    from omegaconf import OmegaConf

    check_model_config(model_cfg)
    target = OmegaConf.select(model_cfg, "_target_") if OmegaConf.is_config(model_cfg) \
        else model_cfg["_target_"]
    extra: dict[str, Any] = {}
    try:
        fn = get_method(target)
        if "categorical" in inspect.signature(fn).parameters:
            extra["categorical"] = list(categorical)
    except Exception:  # noqa: BLE001 - reported by instantiate below
        pass
    try:
        return instantiate(model_cfg, **extra)
    except InstantiationException as exc:
        cause = exc.__cause__ or exc
        raise ConfigError(
            f"model._target_={target!r} could not be built: {str(cause).splitlines()[0]}"
        ) from None


def final_step(model: Any) -> Any:
    """The estimator at the end of a Pipeline (the model itself otherwise)."""
    steps = getattr(model, "steps", None)
    return steps[-1][1] if steps else model


def check_classifier(model: Any, arg: str = "model") -> None:
    """One line naming ``arg`` unless ``model`` is a fitted single-output classifier with
    ``predict_proba``: regressors, unfitted models, multi-output models and pipelines whose
    final step is not a classifier are refused."""
    from sklearn.base import is_classifier, is_regressor
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    name = type(model).__name__
    last = final_step(model)
    if is_regressor(last) or (not is_classifier(last) and not hasattr(last, "classes_")
                              and not hasattr(last, "predict_proba")):
        what = f"a Pipeline ending in {type(last).__name__}" if last is not model else name
        raise ConfigError(f"{arg}: {what} is not a classifier; expected {SUPPORTED}")
    if not hasattr(model, "predict_proba"):
        raise ConfigError(f"{arg}: {name} has no predict_proba; expected {SUPPORTED}")
    try:
        check_is_fitted(model)
    except NotFittedError:
        raise ConfigError(f"{arg}: {name} is not fitted; fit it first (expected {SUPPORTED})"
                          ) from None
    except TypeError:
        pass  # not a scikit-learn estimator: trust classes_ below
    classes = getattr(model, "classes_", None)
    if classes is None:
        raise ConfigError(f"{arg}: {name} has no classes_ (not fitted?); expected {SUPPORTED}")
    if isinstance(classes, list) or np.asarray(classes).ndim != 1 \
            or getattr(last, "n_outputs_", 1) != 1:
        raise ConfigError(f"{arg}: {name} is a multi-output model; expected {SUPPORTED}")
