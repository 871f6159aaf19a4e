"""The DEAP genetic counterfactual search (method ``dpg_ga``), in small modules:

``distance`` (feature scale, mixed distance), ``space`` (feasible box, snapping, target bounds),
``reference`` (training rows: implausibility reference and anchors), ``objectives`` (vectorised
objectives and fitness), ``operators`` (vectorised init, mutation, crossover, selection),
``adapters`` (any deap.tools operator, per individual), ``algorithm`` (the generation loop:
eaSimple with elitism, Statistics, Logbook, HallOfFame), ``thresholds`` (split edges of a tree
ensemble), ``refine`` (final reset / shrink / towards-anchor pass), ``select`` (NSGA-II and
greedy max-min), ``genetic`` (the explainer). Settings: :class:`cfgen.config.GAConfig`.
"""

from cfgen.search.distance import MixedDistance, feature_scale
from cfgen.search.genetic import GeneticExplainer, GeneticSettings
from cfgen.search.space import SearchSpace

__all__ = ["GeneticExplainer", "GeneticSettings", "MixedDistance", "SearchSpace", "feature_scale"]
