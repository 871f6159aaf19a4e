"""NICE (Brughmans et al. 2023, PyPI ``nicex`` 0.2.3) as a cfgen method plug-in (``method=nice``).

NICE starts from the query's nearest unlike neighbour (the closest training row, by HEOM
distance, that the model puts in the target class and -- ``justified_cf`` -- also classifies
correctly) and then, best first, copies one of that neighbour's feature values into the query at
a time until the model says "target class". Which feature it copies next is its ``mode``:

* ``sparsity``: the one that raises the target probability most (few changes);
* ``proximity``: the largest probability gain per unit of HEOM distance added (close rows);
* ``plausibility``: probability gain times the drop in an autoencoder's reconstruction error
  (rows that look like the data; :mod:`cfgen.baselines.autoencoder`, fitted once here).

The adapter:

* gives NICE the encoded training rows, the categorical indices (``cat_feat``) and the problem's
  fast ``predictor.predict_proba`` as ``predict_fn``; ``target_class`` is ``[target]``;
* honours actionability and permitted ranges through the neighbour: NICE's candidates (training
  rows in the target class, correctly classified) are clipped into the query's box
  (:mod:`cfgen.baselines.ranges`: a ``no_change`` feature takes the query's value, a
  ``non_decreasing`` one at least the query's value, ...) and a clipped row stays a candidate
  only if ``predict_fn`` still puts it in the target class. Every row NICE then builds mixes
  the query's and that neighbour's values, so it obeys the rules by construction; the result is
  still checked against the box and re-checked with the estimator's own ``predict``;
* returns one counterfactual per query (NICE's design): ``k > 1`` gets that one row and a
  ``reason`` saying so;
* enforces ``time_limit`` (seconds per query) inside ``predict_fn``, which NICE's loop calls at
  every step: past the deadline the query returns nothing, ``timed_out=True`` and a reason.

Seeding: NICE is deterministic (the same query gives the same row); the task's ``rng`` is not
used. Only the plausibility autoencoder has a seed, ``autoencoder_seed`` (the config passes the
experiment seed), from which its ``random_state`` is derived.

numpy 2 / pandas 3: nicex 0.2.3 pins numpy<2 and pandas<2 but the code NICE runs here (distance,
data, best-first search, rewards) works unchanged on numpy 2.4; install it with ``--no-deps``.
"""

from __future__ import annotations

import functools
import time
import zlib
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from cfgen.baselines.ranges import Box, allowed_box, blocked_reason
from cfgen.errors import ConfigError
from cfgen.explanation import Explanation
from cfgen.schema import FeatureSchema

MODES: tuple[str, ...] = ("sparsity", "proximity", "plausibility")
ROLES: dict[str, str] = {
    "sparsity": "sparsest",
    "proximity": "closest",
    "plausibility": "plausible",
}
NORMALIZATIONS: tuple[str, ...] = ("minmax", "std")


class NiceTimeout(Exception):
    """Raised inside NICE's ``predict_fn`` once the query's deadline has passed."""


class NoCandidate(Exception):
    """No training row may serve as the nearest unlike neighbour under the rules."""


class DeadlineProba:
    """``predict_fn`` for NICE: the predictor's probabilities, a call count and a deadline."""

    def __init__(self, predictor: Any) -> None:
        self.predictor = predictor
        self.deadline: float | None = None
        self.calls = 0

    def __call__(self, X: np.ndarray) -> np.ndarray:
        self.calls += 1
        if self.deadline is not None and time.perf_counter() > self.deadline:
            raise NiceTimeout
        return np.asarray(self.predictor.predict_proba(np.asarray(X, dtype=float)))


def _reachable_neighbour(nice_module: Any, data: Any, metric: Any) -> Any:
    """NICE's ``NearestNeighbour`` over candidates projected into the current query's box."""

    class ReachableNeighbour(nice_module.NearestNeighbour):
        box: Box | None = None
        last: np.ndarray | None = None  # the neighbour of the latest query (a diagnostic)

        def find_neighbour(self, X: np.ndarray) -> np.ndarray:
            candidates = self.data.candidates_view
            if self.box is not None:
                candidates = project_candidates(
                    candidates, self.box, self.data.predict_fn, self.data.target_class
                )
            if not len(candidates):
                raise NoCandidate
            distances = self.distance_metric.measure(X, candidates)
            self.last = candidates[int(np.argmin(distances)), :].copy()[np.newaxis, :]
            return self.last.copy()

    return ReachableNeighbour(data, metric)


def project_candidates(
    candidates: np.ndarray, box: Box, predict_fn: Any, target_class: Sequence[int]
) -> np.ndarray:
    """Candidates clipped into ``box``; a clipped row stays only if still in ``target_class``.

    Rows already inside the box are kept as they are (NICE's own candidates); a row the rules
    touch (e.g. a ``no_change`` feature set back to the query's value) is re-predicted.
    """
    projected = np.clip(candidates, box.lo, box.hi)
    moved = np.any(projected != candidates, axis=1)
    keep = ~moved
    if moved.any():
        proba = np.asarray(predict_fn(projected[moved]))
        keep[moved] = np.isin(proba.argmax(axis=1), list(target_class))
    return projected[keep]


def _check_settings(
    mode: str, time_limit: float | None, num_normalization: str, autoencoder_max_iter: int
) -> None:
    if mode not in MODES:
        raise ConfigError(
            f"method.mode={mode!r} is not allowed: expected one of {', '.join(MODES)}"
        )
    if time_limit is not None and not time_limit > 0:
        raise ConfigError(f"method.time_limit={time_limit!r} is not allowed: expected > 0")
    if num_normalization not in NORMALIZATIONS:
        raise ConfigError(
            f"method.num_normalization={num_normalization!r} is not allowed: "
            f"expected one of {', '.join(NORMALIZATIONS)}"
        )
    if (
        isinstance(autoencoder_max_iter, bool)
        or not isinstance(autoencoder_max_iter, int)
        or autoencoder_max_iter < 1
    ):
        raise ConfigError(
            f"method.autoencoder_max_iter={autoencoder_max_iter!r} is not "
            "allowed: expected an int >= 1"
        )


class NiceExplainer:
    """NICE (``mode`` sparsity | proximity | plausibility) implementing ``Explainer.explain``.

    Built as ``NiceExplainer(problem, schema, class_bounds, name=..., time_limit=..., mode=...)``
    from ``cfgen/conf/method/nice.yaml``. ``problem`` needs ``X_train``, ``y_train``,
    ``estimator``, ``predictor`` and ``n_classes``; ``class_bounds`` is ignored.
    """

    needs_bounds: ClassVar[bool] = False

    def __init__(
        self,
        problem: Any,
        schema: FeatureSchema,
        class_bounds: Any = None,
        *,
        name: str | None = None,
        time_limit: float | None = None,
        mode: str = "sparsity",
        justified_cf: bool = True,
        num_normalization: str = "minmax",
        autoencoder_seed: int = 0,
        autoencoder_hidden: Sequence[int] | None = None,
        autoencoder_max_iter: int = 500,
    ) -> None:
        _check_settings(mode, time_limit, num_normalization, autoencoder_max_iter)
        import nice as nice_module  # lazy: only NICE runs pay for it

        self.name = name or f"nice_{mode}"
        self.mode = mode
        self.time_limit = time_limit
        self.schema = schema
        self.estimator = problem.estimator
        self.n_classes = int(problem.n_classes)
        self.d = len(schema)
        X_train = np.array(problem.X_train, dtype=float, copy=True)  # NICE writes into it
        auto_encoder = None
        if mode == "plausibility":
            from cfgen.baselines.autoencoder import ReconstructionError

            seed = np.random.SeedSequence([int(autoencoder_seed), zlib.crc32(b"nice/autoencoder")])
            auto_encoder = ReconstructionError(
                X_train,
                schema,
                seed=int(seed.generate_state(1)[0]),
                hidden=autoencoder_hidden,
                max_iter=autoencoder_max_iter,
            )
        self.autoencoder = auto_encoder
        self.predict_fn = DeadlineProba(problem.predictor)
        self._nice = nice_module.NICE(
            self.predict_fn,
            X_train,
            [int(j) for j in np.flatnonzero(schema.categorical)],
            y_train=np.asarray(problem.y_train).astype(int),
            optimization=mode,
            justified_cf=bool(justified_cf),
            distance_metric="HEOM",
            num_normalization=num_normalization,
            auto_encoder=auto_encoder,
        )
        self._neighbour = _reachable_neighbour(
            nice_module, self._nice.data, self._nice.distance_metric
        )
        self._nice.nearest_neighbour = self._neighbour

    def explain(self, x: np.ndarray, target: int, k: int, rng: np.random.Generator) -> Explanation:
        """NICE's one counterfactual of ``x`` in ``target`` (``rng`` unused: deterministic)."""
        start = time.perf_counter()
        x = np.asarray(x, dtype=float).ravel()
        target = int(target)
        empty = np.empty((0, self.d))
        self.predict_fn.calls = 0

        def done(
            cfs: np.ndarray, reason: str | None = None, timed_out: bool = False, **extra: Any
        ) -> Explanation:
            if reason is None and len(cfs) < k:
                reason = f"NICE returns one counterfactual per query (asked for {k})"
            extra.update(
                method=self.name,
                mode=self.mode,
                model_calls=self.predict_fn.calls,
                timed_out=timed_out,
            )
            return Explanation(
                cfs,
                target,
                k,
                time.perf_counter() - start,
                reason=reason,
                timed_out=timed_out,
                roles=[ROLES[self.mode]] * len(cfs),
                extra=extra,
            )

        if not 0 <= target < self.n_classes:
            raise ConfigError(
                f"target={target} is not allowed: expected a class 0..{self.n_classes - 1}"
            )
        if int(np.asarray(self.estimator.predict(x[None, :]))[0]) == target:
            return done(empty, "query is already in the target class")
        box = allowed_box(self.schema, x)
        if box.blocked is not None:
            return done(empty, blocked_reason(self.schema, x, box))
        if np.all(box.lo == box.hi):
            return done(
                empty, "no feature may change under the actionability rules and permitted ranges"
            )
        self._neighbour.box, self._neighbour.last = box, None
        self.predict_fn.deadline = None if self.time_limit is None else start + self.time_limit
        try:
            cf = np.asarray(
                self._nice.explain(x[None, :].copy(), target_class=[target]), dtype=float
            )
        except NiceTimeout:
            return done(empty, f"time limit of {self.time_limit:g} s exceeded", timed_out=True)
        except NoCandidate:
            return done(
                empty,
                "no training row in the target class (correctly classified) is "
                "reachable under the actionability rules and permitted ranges",
            )
        finally:
            self.predict_fn.deadline = None
            self._neighbour.box = None
        return self._checked(x, cf, box, target, done)

    def _checked(self, x: np.ndarray, cf: np.ndarray, box: Box, target: int, done) -> Explanation:
        """NICE's row if it is inside the box and the estimator's own predict agrees.

        ``extra`` gets ``changed`` (features NICE moved) and ``neighbour`` (the nearest unlike
        neighbour it copied values from; NICE's row takes each value from it or from ``x``).
        """
        changed = int(np.sum(cf[0] != x))
        neighbour = self._neighbour.last
        done = functools.partial(
            done, changed=changed, neighbour=None if neighbour is None else neighbour[0].tolist()
        )
        if not box.contains(cf)[0]:
            return done(
                np.empty((0, self.d)), "NICE kept a query value outside its permitted range"
            )
        if int(np.asarray(self.estimator.predict(cf))[0]) != target:
            return done(
                np.empty((0, self.d)),
                "NICE's row is not in the target class by the estimator's own predict",
            )
        return done(cf)
