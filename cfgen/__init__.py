"""cfgen: counterfactual explanations for tree ensembles, found by a bound-guided DEAP search."""

__version__ = "0.1.0"
