"""Helpers both suites share: the guarded MAD, per-task reductions, small numeric guards."""

from __future__ import annotations

import contextlib
import math
from typing import Iterator

import numpy as np


def guarded_mad(X: np.ndarray) -> np.ndarray:
    """Per-column median absolute deviation with cfgen's zero guard.

    ``MAD_j = median_i |X_ij - median(X_j)|`` (scale 1, as Guidotti's and DiCE's definitions).
    Where that is 0 (more than half the rows share one value: common for integer, count and
    sparse features) the mean absolute deviation around the median is used instead, which is 0
    only for a column that is constant; a constant column gets 1.0 (its changes count in raw units).
    """
    X = np.asarray(X, dtype=float)
    if X.shape[1] == 0:
        return np.ones(0)
    med = np.median(X, axis=0)
    dev = np.abs(X - med)
    mad = np.median(dev, axis=0)
    mean_dev = dev.mean(axis=0)
    mad = np.where(mad > 0, mad, mean_dev)
    return np.where(mad > 0, mad, 1.0)


_CONTROLLER: list = []  # one threadpoolctl controller per process, built on first use


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """scikit-learn's neighbour searches on one OpenMP/BLAS thread.

    The metrics run in the parent while workers hold the other CPUs; on a shared machine
    OpenMP's thread team costs more than it saves (measured: LOF fit 0.09 s vs 0.63 s on
    german_credit under load). Results are the same with any number of threads. The
    controller is built once (``threadpool_limits`` rescans the loaded libraries on every call:
    6.5 ms, more than a one-task LOF query).
    """
    if not _CONTROLLER:
        try:
            import sklearn.neighbors  # noqa: F401 - load its OpenMP runtime before the scan
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
            _CONTROLLER.append(None)
        else:
            _CONTROLLER.append(ThreadpoolController())
    controller = _CONTROLLER[0]
    if controller is None:  # pragma: no cover
        yield
        return
    with controller.limit(limits=1):
        yield


def div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` element-wise, NaN where ``den <= 0``."""
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    out = np.full(np.broadcast(num, den).shape, math.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def share(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` element-wise, 0 where ``den == 0`` (a share of nothing)."""
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    out = np.zeros(np.broadcast(num, den).shape)
    np.divide(num, den, out=out, where=den > 0)
    return out


def bool_jaccard(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Row-wise Jaccard distance of ``A != 0`` and ``B != 0`` (scipy >= 1.15 ``jaccard``)."""
    a, b = A != 0, B != 0
    union = (a | b).sum(axis=-1)
    diff = (a ^ b).sum(axis=-1)
    return np.divide(diff, union, out=np.zeros(diff.shape, dtype=float), where=union > 0)


class Segments:
    """Per-task reductions of values stacked task after task (task ``t`` owns ``counts[t]``).

    Tasks are grouped by their count, so each reduction is numpy's reduction along a row of a
    2-D array: the same summation order as on the task's own 1-D values (``np.add.reduceat``
    sums differently), hence the same numbers as computing one task at a time.
    """

    def __init__(self, counts: np.ndarray) -> None:
        self.counts = np.asarray(counts, dtype=np.intp)
        self.n = len(self.counts)
        self.total = int(self.counts.sum())
        self.starts = np.concatenate([[0], np.cumsum(self.counts)[:-1]]).astype(np.intp)
        self.groups: list[tuple[np.ndarray, np.ndarray]] = []
        for c in np.unique(self.counts[self.counts > 0]):
            tasks = np.flatnonzero(self.counts == c)
            rows = self.starts[tasks][:, None] + np.arange(c)
            self.groups.append((tasks, rows))

    @property
    def owner(self) -> np.ndarray:
        """Task of each stacked value."""
        return np.repeat(np.arange(self.n), self.counts)

    def reduce(self, v: np.ndarray, fn, empty: float = math.nan) -> np.ndarray:
        out = np.full(self.n, empty, dtype=float)
        for tasks, rows in self.groups:
            out[tasks] = fn(v[rows], axis=1)
        return out

    def sum(self, v: np.ndarray, empty: float = math.nan) -> np.ndarray:
        return self.reduce(v, np.sum, empty)

    def mean(self, v: np.ndarray, empty: float = math.nan) -> np.ndarray:
        return self.reduce(v, np.mean, empty)

    def stats(self, v: np.ndarray, empty: float = math.nan):
        """Per task ``(mean, min, max)``; ``empty`` for a task with no values."""
        return (
            self.reduce(v, np.mean, empty),
            self.reduce(v, np.min, empty),
            self.reduce(v, np.max, empty),
        )

    def pairs(self) -> tuple[np.ndarray, np.ndarray, Segments]:
        """The unordered pairs within each task (``np.triu_indices`` order), task after task:
        first and second stacked index, and their :class:`Segments`."""
        n_pairs = self.counts * (self.counts - 1) // 2
        segs = Segments(n_pairs)
        first = np.zeros(segs.total, dtype=np.intp)
        second = np.zeros(segs.total, dtype=np.intp)
        for c in np.unique(self.counts[self.counts > 1]):
            tasks = np.flatnonzero(self.counts == c)
            iu, ju = np.triu_indices(int(c), 1)
            pos = segs.starts[tasks][:, None] + np.arange(len(iu))
            first[pos] = self.starts[tasks][:, None] + iu
            second[pos] = self.starts[tasks][:, None] + ju
        return first, second, segs
