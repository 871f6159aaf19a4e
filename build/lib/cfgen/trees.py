"""Placeholder of the single tree-ensemble view (the trees room's ``TreeEnsemble`` replaces it)."""

from __future__ import annotations

from typing import Any

from cfgen.errors import ConfigError


class UnsupportedModel(ConfigError):
    """The model is not a tree ensemble cfgen can read."""


class TreeEnsemble:
    """Minimal stand-in: holds a supported scikit-learn forest or tree."""

    def __init__(self, model: Any) -> None:
        self.model = model

    @classmethod
    def from_model(cls, model: Any) -> TreeEnsemble:
        from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
        from sklearn.tree import DecisionTreeClassifier

        if isinstance(model, (RandomForestClassifier, ExtraTreesClassifier,
                              DecisionTreeClassifier)):
            return cls(model)
        raise UnsupportedModel(f"model: {type(model).__name__} is not a supported tree ensemble")
