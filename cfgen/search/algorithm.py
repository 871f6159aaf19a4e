"""The generation loop: DEAP's ``eaSimple`` with elitism, over a population held in one array.

Per generation, as in ``deap.algorithms.eaSimple``: evaluate, update the ``HallOfFame`` and
record ``Statistics`` into the ``Logbook``; then ``toolbox.select`` ``n - elite`` parents,
``var_and`` (DEAP's ``varAnd``: crossover of consecutive pairs with ``crossover_prob``, then
mutation of each child with ``mutation_prob``) and the next population is the ``elite`` best
individuals plus the children. cfgen adds the stopping rules of the search: ``patience``
generations without an improvement of ``delta_threshold`` (once something valid exists),
``max_generations`` (up to three times as many while nothing valid has been found) and the
method's time limit. The toolbox's operators work on the whole ``(n, d)`` array (vectorised
defaults) or on one individual at a time (``deap.tools`` operators, through
:mod:`cfgen.search.adapters`).
"""

from __future__ import annotations

import time
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from deap import base, creator, tools

from cfgen.config import GAConfig
from cfgen.search.distance import MixedDistance, row_keys
from cfgen.search.objectives import INVALID, Evaluator

if not hasattr(creator, "CfScalarFitness"):
    creator.create("CfScalarFitness", base.Fitness, weights=(-1.0,))  # minimised
if not hasattr(creator, "CfGenes"):
    creator.create("CfGenes", list, fitness=creator.CfScalarFitness)
if not hasattr(creator, "CfHallFitness"):  # (quality, arrival): ties go to the earlier row
    creator.create("CfHallFitness", base.Fitness, weights=(-1.0, -1.0))
if not hasattr(creator, "CfHallRow"):
    creator.create("CfHallRow", list, fitness=creator.CfHallFitness)


@dataclass
class Evolution:
    """What the loop leaves for the final pass."""

    hall: tools.HallOfFame  # best distinct valid individuals (fitness = penalty-free quality)
    logbook: tools.Logbook
    best_rows: list[np.ndarray] = field(default_factory=list)
    generations: int = 0
    timed_out: bool = False


def var_and(pop: np.ndarray, toolbox: base.Toolbox) -> np.ndarray:
    """DEAP's ``varAnd`` on the population array: ``toolbox.mate`` then ``toolbox.mutate``
    (each applies its own probability per pair / per individual)."""
    return toolbox.mutate(toolbox.mate(pop))


class RowHall(tools.HallOfFame):
    """DEAP's HallOfFame, keeping the offered individual itself: each is a fresh row never
    changed after it is offered, so DEAP's deep copy on insertion (a third of the loop on small
    datasets) buys nothing."""

    def insert(self, item: Any) -> None:
        i = bisect_right(self.keys, item.fitness)
        self.items.insert(len(self) - i, item)
        self.keys.insert(i, item.fitness)


def hall_of_fame(size: int) -> tools.HallOfFame:
    """A HallOfFame of array rows; rows are alike when their keys (exact values) match."""
    return RowHall(size, similar=lambda a, b: a.key == b.key)


def update_hall(hall: tools.HallOfFame, rows: np.ndarray, quality: np.ndarray,
                arrival: int) -> int:
    """Offer the valid rows to the hall (fitness: quality, then order of arrival); only rows
    that can enter become DEAP individuals. Returns the next arrival number."""
    order = arrival + np.arange(len(rows))
    after = arrival + len(rows)
    if len(hall) >= hall.maxsize:
        keep = quality <= hall[-1].fitness.values[0]
        rows, quality, order = rows[keep], quality[keep], order[keep]
    keys = row_keys(rows)
    _, first = np.unique(keys, return_index=True)
    for i in np.sort(first):
        ind = creator.CfHallRow(rows[i].tolist())
        ind.fitness.values = (float(quality[i]), float(order[i]))
        ind.key = keys[i]
        ind.row = rows[i]
        hall.update([ind])
    return after


def _stats() -> tools.Statistics:
    stats = tools.Statistics()
    stats.register("best", np.min)
    stats.register("mean", np.mean)
    return stats


def evolve(pop: np.ndarray, toolbox: base.Toolbox, ev: Evaluator, metric: MixedDistance,
           ga: GAConfig, deadline: float | None, hall_size: int) -> Evolution:
    """Run the generations (see the module docstring); ``pop`` is the first population."""
    n = len(pop)
    elite = min(ga.elite, n - 1)
    stats = _stats()
    out = Evolution(hall_of_fame(hall_size), tools.Logbook())
    out.logbook.header = ["gen", "valid", "valid_mean", "best", "mean"]
    best_so_far, stale, arrival = np.inf, 0, 0
    hard_cap = 3 * ga.max_generations  # while nothing valid is found
    for gen in range(hard_cap):
        out.generations = gen + 1
        pop_s = metric.scaled(pop)
        obj = toolbox.evaluate(pop, pop_s)
        fit, q = ev.fitness(obj, pop_s)
        score = np.where(obj.valid, q, INVALID + (1.0 - obj.margin))
        arrival = update_hall(out.hall, pop[obj.valid], q[obj.valid], arrival)
        b = int(np.argmin(score))
        out.best_rows.append(pop[b].copy())
        valid_mean = float(q[obj.valid].mean()) if obj.valid.any() else float("nan")
        out.logbook.record(gen=gen, valid=int(obj.valid.sum()), valid_mean=valid_mean,
                           **stats.compile([score]))
        if best_so_far - score[b] > ga.delta_threshold:
            best_so_far, stale = score[b], 0
        else:
            stale += 1
        if stale >= ga.patience and best_so_far < INVALID:
            break
        if deadline is not None and time.perf_counter() > deadline:
            out.timed_out = True
            break
        if gen >= ga.max_generations - 1 and (best_so_far < INVALID or gen == hard_cap - 1):
            break
        order = np.argsort(fit, kind="stable")
        parents = toolbox.select(fit, n - elite)
        pop = np.vstack([pop[order[:elite]], var_and(pop[parents], toolbox)])
    return out


def hall_rows(hall: tools.HallOfFame, d: int) -> tuple[np.ndarray, np.ndarray]:
    """The hall's rows (best first) and their quality."""
    if not len(hall):
        return np.zeros((0, d)), np.zeros(0)
    return (np.vstack([ind.row for ind in hall]),
            np.array([ind.fitness.values[0] for ind in hall]))


def logbook_records(logbook: tools.Logbook) -> list[dict[str, Any]]:
    """The logbook as plain JSON-able dicts."""
    def plain(v: Any) -> Any:
        if isinstance(v, (np.floating, float)):
            return float(v) if np.isfinite(v) else None  # JSON: no NaN
        return int(v)

    return [{k: plain(v) for k, v in rec.items()} for rec in logbook]
