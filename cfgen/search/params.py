"""Settings of the genetic search: a plain copy of the ``ga`` config group."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping


@dataclass
class GAParams:
    """Genetic search settings and fitness weights (picklable, cheap to copy).

    Every fitness term is normalised per feature (distances in units of the feature's MAD),
    so the weights are comparable across datasets. See ``conf/ga/default.yaml``.
    """

    # evolution
    population_size: int = 30  # individuals per generation
    max_generations: int = 10  # upper limit on generations (x3 while nothing valid is found)
    crossover_prob: float = 0.7  # probability a pair is recombined (uniform crossover)
    mutation_prob: float = 0.3  # probability an individual is mutated
    mutation_gene_prob: float = 0.3  # per-gene mutation probability (capped, at least one gene)
    tournament_size: int = 3  # tournament selection size
    elite: int = 2  # best individuals copied unchanged
    init_change_prob: float = 0.5  # largest per-gene probability of a move in sparse first rows
    bounds_init_prob: float = 0.7  # share of new gene values drawn from the target's class bounds
    patience: int = 2  # stop after this many generations without improvement ...
    delta_threshold: float = 0.01  # ... of at least this much in the best fitness
    # fitness weights
    w_distance: float = 1.0  # MAD-scaled L1 distance to the query (per feature)
    w_sparsity: float = 0.5  # share of changed features
    w_plausibility: float = 0.2  # distance to the nearest target-class training row (per feature)
    w_bounds: float = 0.3  # share of features outside the target's class bounds
    w_diversity: float = 0.1  # reward for distance to the nearest other valid individual
    # final pass and choice
    refine: bool = True  # final pass: reset / shrink changes, plausible variants
    # guidance by real rows, final pass and choice
    anchors: int = 20  # nearest valid target-class training rows used as guides
    anchor_init_share: float = 0.25  # share of the first population started towards anchors
    dense_init_share: float = 0.25  # share started with every out-of-bounds gene moved inside
    reset_prob: float = 0.4  # a mutated changed gene goes back to the query's value
    mutation_max_genes: int = 4  # caps mutation_gene_prob at this many expected genes
    reference_rows: int = 64  # implausibility is measured against this many nearest rows
    pool_size: int = 16  # candidates carried into the final pass
    plausibility_steps: int = 4  # final pass: steps of each cf towards its nearest anchor
    w_final_plausibility: float = 1.5  # weight of implausibility when choosing the final k

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | Any) -> GAParams:
        """From a mapping / DictConfig; unknown keys are ignored, missing ones keep defaults."""
        names = {f.name for f in fields(cls)}
        keys = cfg.keys() if hasattr(cfg, "keys") else []
        return cls(**{k: cfg[k] for k in keys if k in names})
