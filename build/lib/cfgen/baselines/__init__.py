"""Baseline counterfactual methods as cfgen method plug-ins.

``cfgen.baselines.dice.DiceExplainer`` wraps DiCE (random / genetic / kdtree) and
``cfgen.baselines.nice.NiceExplainer`` wraps NICE (sparsity / proximity / plausibility); both
libraries are imported lazily, so importing this package costs nothing. See docs/baselines.md.
"""

__all__ = ["DiceExplainer", "NiceExplainer"]


def __getattr__(name: str):
    if name == "DiceExplainer":
        from cfgen.baselines.dice import DiceExplainer

        return DiceExplainer
    if name == "NiceExplainer":
        from cfgen.baselines.nice import NiceExplainer

        return NiceExplainer
    raise AttributeError(name)
