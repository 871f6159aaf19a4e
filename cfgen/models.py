"""Fitting the classifier described by ``cfg.model``."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from cfgen.data import Dataset
from cfgen.errors import ConfigError


@dataclass
class FittedModel:
    """A fitted estimator, its fast predictor and how well it fits."""

    estimator: object
    predictor: object
    train_accuracy: float
    test_accuracy: float
    seconds: float


def build_estimator(model_cfg: DictConfig):
    """Instantiate the (unfitted) estimator from its ``_target_`` config."""
    try:
        return instantiate(model_cfg)
    except InstantiationException as exc:
        cause = exc.__cause__ or exc
        raise ConfigError(
            f"model._target_={OmegaConf.select(model_cfg, '_target_')!r} could not be built: "
            f"{str(cause).splitlines()[0]}"
        ) from None


def fit_model(model_cfg: DictConfig, data: Dataset) -> FittedModel:
    """Fit on the training split; report train/test accuracy."""
    from cfgen.predictor import compile_predictor

    est = build_estimator(model_cfg)
    start = time.perf_counter()
    try:
        est.fit(data.X_train, data.y_train)
    except ValueError as exc:
        raise ConfigError(f"model: fitting {type(est).__name__} failed: {exc}") from None
    seconds = time.perf_counter() - start
    predictor = compile_predictor(est)
    return FittedModel(
        estimator=est,
        predictor=predictor,
        train_accuracy=float(np.mean(est.predict(data.X_train) == data.y_train)),
        test_accuracy=float(np.mean(est.predict(data.X_test) == data.y_test)),
        seconds=seconds,
    )
