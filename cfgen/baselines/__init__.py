"""Baseline counterfactual methods behind cfgen's ``Explainer`` interface.

``cfgen.baselines.dice.DiceExplainer`` wraps DiCE (random / genetic / kdtree); ``dice_ml`` is
imported lazily, so importing this package costs nothing.
"""

__all__ = ["DiceExplainer"]


def __getattr__(name: str):
    if name == "DiceExplainer":
        from cfgen.baselines.dice import DiceExplainer

        return DiceExplainer
    raise AttributeError(name)
