"""The DEAP genetic counterfactual search."""

from cfgen.search.genetic import GAParams, GeneticExplainer, feature_scale

__all__ = ["GAParams", "GeneticExplainer", "feature_scale"]
