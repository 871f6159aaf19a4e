"""The DEAP genetic counterfactual search (method ``dpg_ga``), in small modules:

``params`` (GAParams), ``distance`` (feature scale, mixed distance), ``space`` (feasible box,
snapping, target bounds), ``reference`` (training rows: implausibility reference and anchors),
``objectives`` (vectorised objectives and fitness), ``operators`` (init, mutation, crossover,
selection), ``thresholds`` (split edges of a forest), ``refine`` (final reset / shrink /
towards-anchor pass), ``select`` (NSGA-II and greedy max-min), ``genetic`` (the explainer).
"""

from cfgen.search.distance import MixedDistance, feature_scale
from cfgen.search.genetic import GeneticExplainer
from cfgen.search.params import GAParams
from cfgen.search.space import SearchSpace

__all__ = ["GAParams", "GeneticExplainer", "MixedDistance", "SearchSpace", "feature_scale"]
