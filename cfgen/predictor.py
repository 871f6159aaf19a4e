"""Fast class-probability predictors for the genetic search's hot path.

:class:`CompiledEnsemble` compiles any :class:`~cfgen.trees.TreeEnsemble` (sklearn random forest,
extra trees, decision tree, gradient boosting, hist gradient boosting, XGBoost, LightGBM
classifiers) into a handful of numpy arrays and evaluates a whole population with a vectorised
traversal (a Python loop over depth only). It reproduces the library's own arithmetic:

* vote ensembles (sklearn forests / trees): ``predict_proba`` bit-for-bit equal;
* sklearn GB / HGB, LightGBM: float64 margins summed in the library's order from the library's
  base score, then its link (``expit`` / sklearn's ``softmax`` / LightGBM's ``1/(1+exp(-x))``
  and max-shifted softmax): probabilities within ~1e-15, classes by the library's own rule
  (GB: ``raw >= 0``; HGB: ``raw > 0``; LightGBM: argmax of the probabilities);
* XGBoost: float32 margins summed tree by tree as XGBoost does, and its float32 sigmoid /
  softmax with the C library's ``expf`` (which XGBoost calls; without a C compiler an exact
  numpy emulation of glibc's): probabilities bit-for-bit equal; classes ``p > 0.5`` (binary)
  or argmax.

Engines (:attr:`CompiledEnsemble.engine`), all giving the same bits: ``"c"``, a small C kernel
compiled once per machine with the system compiler and cached (:func:`c_kernel`; the fastest);
else scikit-learn's compiled gradient-boosting kernels fed with the compiled trees
(``"dense"`` / ``"sparse"``, :class:`_NativeEngine`) or the vectorised numpy walk, whichever is
fastest on a probe. Every engine is checked against the numpy walk when a model is compiled.

:class:`BatchedPredictor` wraps any other classifier's ``predict_proba`` behind the same interface;
:func:`compile_predictor` picks the right one.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from cfgen.trees import TreeEnsemble, UnsupportedModel

__all__ = [
    "BatchedPredictor",
    "CompiledEnsemble",
    "CompiledForest",
    "Predictor",
    "compile_predictor",
    "is_compilable",
]


@runtime_checkable
class Predictor(Protocol):
    """Probability predictor over the model's encoded feature space."""

    classes_: np.ndarray

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities, shape (n, n_classes), columns ordered as ``classes_``."""
        ...

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted class labels (``classes_`` values)."""
        ...


def is_compilable(model: Any) -> bool:
    """Whether :class:`CompiledEnsemble` supports ``model`` (see :mod:`cfgen.trees`)."""
    try:
        TreeEnsemble.from_model(model)
    except UnsupportedModel:
        return False
    return True


# --------------------------------------------------------------------------- input checks


def _as_2d(X: Any, n_features: int, dtype: type[np.floating]) -> np.ndarray:
    """``X`` as a C-contiguous (n, d) array of ``dtype``, as the library converts it.

    Raises ``ValueError`` for NaN, for values infinite in ``dtype`` (sklearn rejects them too; the
    missing-value rules of boosted libraries are not emulated) and for a wrong shape.
    """
    with np.errstate(over="ignore"):  # float64 beyond float32 range -> inf, reported below
        Xc = np.ascontiguousarray(X, dtype=dtype)
    if Xc.ndim != 2:
        raise ValueError(f"expected a 2-D array (n_rows, {n_features}), got shape {Xc.shape}")
    if Xc.shape[1] != n_features:
        raise ValueError(
            f"X has {Xc.shape[1]} features, but the model expects {n_features} features"
        )
    if not np.isfinite(Xc).all():
        _raise_non_finite(Xc)
    return Xc


def _raise_non_finite(X: np.ndarray) -> None:
    nan_rows = np.flatnonzero(np.isnan(X).any(axis=1))
    if nan_rows.size:
        raise ValueError(
            f"X contains NaN (first at row {int(nan_rows[0])}); NaN inputs are rejected "
            "explicitly rather than routed by the trees' missing-value rules"
        )
    inf_rows = np.flatnonzero(~np.isfinite(X).all(axis=1))
    raise ValueError(
        f"X contains infinity or a value too large for float32 (first at row {int(inf_rows[0])})"
    )


def _float32_floor(t: np.ndarray) -> np.ndarray:
    """Largest float32 ``<= t`` elementwise (``-inf`` below the float32 range).

    For every float32 ``v``: ``float64(v) <= t``  <=>  ``v <= _float32_floor(t)``, so a split
    test on float32 input can be done in float32 with the same outcome as a float32-X-vs-float64-
    threshold comparison.
    """
    t = np.asarray(t, dtype=np.float64)
    with np.errstate(over="ignore"):
        t32 = t.astype(np.float32)
    too_big = t32.astype(np.float64) > t
    t32[too_big] = np.nextafter(t32[too_big], np.float32(-np.inf))
    return t32


# --------------------------------------------------------------------------- glibc expf


def _expf_table() -> np.ndarray:
    """``bits(2^(i/32)) - (i << 47)``, i < 32: the table of glibc's ``expf`` (derived here)."""
    from decimal import Decimal, localcontext

    with localcontext() as ctx:
        ctx.prec = 50
        exact = [float(Decimal(2) ** (Decimal(i) / 32)) for i in range(32)]  # correctly rounded
    bits = np.array(exact, dtype=np.float64).view(np.uint64)
    return bits - (np.arange(32, dtype=np.uint64) << np.uint64(47))


_EXPF_TAB = _expf_table()
_EXPF_INV_LN2_N = float.fromhex("0x1.71547652b82fep+0") * 32
_EXPF_SHIFT = float.fromhex("0x1.8p+52")
_EXPF_C = (
    float.fromhex("0x1.c6af84b912394p-5") / 32**3,
    float.fromhex("0x1.ebfce50fac4f3p-3") / 32**2,
    float.fromhex("0x1.62e42ff0c52d6p-1") / 32,
)
_EXPF_UNDERFLOW = np.float32(float.fromhex("-0x1.9fe368p6"))  # below: expf returns 0


def expf(x: np.ndarray) -> np.ndarray:
    """glibc's float32 ``expf`` (>= 2.27), bit for bit, for ``x <= 88.7`` (XGBoost's range).

    The algorithm (ARM optimized-routines, used by glibc): ``x * 32 / ln 2 = k + r`` with
    ``2^(k/32)`` from a table and a cubic polynomial for ``2^(r/32)``, all in float64, rounded
    once to float32. Checked against ``libm.expf`` in the tests.
    """
    xd = np.asarray(x, dtype=np.float32).astype(np.float64)
    z = _EXPF_INV_LN2_N * xd
    kd = z + _EXPF_SHIFT
    ki = kd.view(np.uint64)
    kd = kd - _EXPF_SHIFT  # a new array: ``ki`` views the old one
    r = z - kd
    s = (_EXPF_TAB[ki & np.uint64(31)] + (ki << np.uint64(47))).view(np.float64)
    y = (_EXPF_C[0] * r + _EXPF_C[1]) * (r * r) + (_EXPF_C[2] * r + 1.0)
    out = (y * s).astype(np.float32)
    out[xd < _EXPF_UNDERFLOW] = 0.0
    return out


def _xgb_sigmoid(m: np.ndarray) -> np.ndarray:
    """XGBoost's float32 ``Sigmoid``: ``1 / (expf(min(-m, 88.7)) + 1 + 1e-16)``."""
    e = expf(np.minimum(-m, np.float32(88.7)))
    return np.float32(1.0) / ((e + np.float32(1.0)) + np.float32(1e-16))


def _xgb_softmax(m: np.ndarray) -> np.ndarray:
    """XGBoost's float32 softmax per row: ``expf(m - max)`` over a float64 sum cast to float32."""
    e = expf(m - m.max(axis=1, keepdims=True))
    total = e[:, 0].astype(np.float64)
    for k in range(1, e.shape[1]):  # sequential, as XGBoost's loop
        total = total + e[:, k]
    return e / total.astype(np.float32)[:, None]


# --------------------------------------------------------------------------- layout

# steps (0-based) after which (tree, row) pairs already on a leaf are dropped, and the problem
# size (n_trees * n_rows) from which that pays off; measured on 100-tree forests: ~15% faster
# at depth 10 and ~45% with unlimited depth, no gain on small forests
_COMPACT_AT = frozenset({5, 8, 12, 17, 23, 30, 38, 47, 57, 68, 80, 93, 107, 122, 138, 155})
_COMPACT_MIN_PAIRS = 1024


def _adjacent_order(left: np.ndarray, right: np.ndarray, roots: np.ndarray) -> np.ndarray:
    """Breadth-first order of global node ids over all trees at once, children adjacent.

    Level by level: the roots, then for every split node of the level its (left, right) pair.
    """
    parts = [roots]
    level = roots
    while level.size:
        inner = level[left[level] >= 0]
        level = np.column_stack([left[inner], right[inner]]).ravel()
        parts.append(level)
    return np.concatenate(parts)


# --------------------------------------------------------------------------- C kernel

_C_SOURCE = r"""
/* cfgen's tree-ensemble kernels (cfgen/predictor.py). Compiled layout: right == left + 1,
   leaves point to themselves with a +inf threshold, so depth[t] branch-free steps
   node = left[node] + (x > thr) land every row on its leaf. One tree at a time for all rows:
   the rows' walks are independent, so the CPU overlaps them. Rows arrive as float64 and are
   cast once to the library's type (float for sklearn trees and XGBoost; LightGBM's reading of
   |x| <= zero as 0); a non-finite value makes the call return 1 (the caller raises). Sums run
   tree by tree in the given order, in the library's precision (float for XGBoost): no
   fast-math, additions only. */
#include <math.h>
#include <stdint.h>

#define CAST_ROWS(XT)                                                                    \
    XT *X = (XT *)xs;                                                                    \
    for (int64_t i = 0; i < n * d; i++) {                                                \
        XT v = (XT)X64[i];                                                               \
        if (!isfinite(v)) return 1;                                                      \
        X[i] = fabs((double)v) <= zero ? (XT)0 : v;                                      \
    }

#define WALK_ALL()                                                                       \
    for (int64_t i = 0; i < n; i++) node[i] = root;                                      \
    if (steps <= 8) { /* shallow: all rows in lockstep, stop once none moves */          \
        for (int64_t s = 0; s < steps; s++) {                                            \
            int64_t moved = 0;                                                           \
            for (int64_t i = 0; i < n; i++) {                                            \
                int64_t m = node[i];                                                     \
                int64_t next = left[m] + (X[i * d + feature[m]] > thr[m]);               \
                moved |= next ^ m;                                                       \
                node[i] = next;                                                          \
            }                                                                            \
            if (!moved) break;                                                           \
        }                                                                                \
    } else { /* deep, uneven: only the rows that moved last step (the rest are on a leaf) */\
        int64_t live = n;                                                                \
        for (int64_t i = 0; i < n; i++) act[i] = i;                                      \
        for (int64_t s = 0; s < steps && live; s++) {                                    \
            int64_t kept = 0;                                                            \
            for (int64_t j = 0; j < live; j++) {                                         \
                int64_t i = act[j], m = node[i];                                         \
                int64_t next = left[m] + (X[i * d + feature[m]] > thr[m]);               \
                node[i] = next;                                                          \
                act[kept] = i;                                                           \
                kept += next != m;                                                       \
            }                                                                            \
            live = kept;                                                                 \
        }                                                                                \
    }

#define ARGS(XT, VT, OUT)                                                                \
    const double *X64, int64_t n, int64_t d, double zero, const int64_t *feature,        \
    const XT *thr, const int64_t *left, const int64_t *roots, const int64_t *depth,      \
    int64_t K, int64_t group, const VT *value, OUT *out, int64_t *node, int64_t *act,    \
    void *acc_, void *xs

#define MARGIN(NAME, XT, ACC)                                                            \
    int64_t NAME(ARGS(XT, ACC, ACC)) {                                                   \
        CAST_ROWS(XT)                                                                    \
        ACC *acc = (ACC *)acc_;                                                          \
        for (int64_t k = 0; k < K; k++) {                                                \
            for (int64_t i = 0; i < n; i++) acc[i] = 0;                                  \
            for (int64_t t = k * group; t < (k + 1) * group; t++) {                      \
                int64_t root = roots[t], steps = depth[t];                               \
                WALK_ALL()                                                               \
                for (int64_t i = 0; i < n; i++) acc[i] += value[node[i]];                \
            }                                                                            \
            for (int64_t i = 0; i < n; i++) out[i * K + k] = acc[i];                     \
        }                                                                                \
        return 0;                                                                        \
    }
MARGIN(margin_f32_f64, float, double)
MARGIN(margin_f32_f32, float, float)
MARGIN(margin_f64_f64, double, double)

int64_t vote_f32(ARGS(float, double, double)) {
    CAST_ROWS(float)
    (void)acc_;
    int64_t n_trees = group;
    for (int64_t i = 0; i < n * K; i++) out[i] = 0.0;
    for (int64_t t = 0; t < n_trees; t++) {
        int64_t root = roots[t], steps = depth[t];
        WALK_ALL()
        for (int64_t i = 0; i < n; i++) {
            const double *v = value + node[i] * K;
            double *o = out + i * K;
            for (int64_t k = 0; k < K; k++) o[k] += v[k];
        }
    }
    return 0;
}

/* XGBoost's float32 links, with the C library's expf as XGBoost calls it */
void xgb_binary(const float *m, int64_t n, double *proba) {
    for (int64_t i = 0; i < n; i++) {
        float x = -m[i] < 88.7f ? -m[i] : 88.7f;
        float p = 1.0f / ((expf(x) + 1.0f) + 1e-16f);
        proba[2 * i] = (double)(1.0f - p);
        proba[2 * i + 1] = (double)p;
    }
}

void xgb_softmax(const float *m, int64_t n, int64_t K, double *proba) {
    for (int64_t i = 0; i < n; i++) {
        const float *r = m + i * K;
        float top = r[0];
        for (int64_t k = 1; k < K; k++) top = r[k] > top ? r[k] : top;
        double total = 0.0;
        for (int64_t k = 0; k < K; k++) total += expf(r[k] - top);
        float norm = (float)total;
        for (int64_t k = 0; k < K; k++) proba[i * K + k] = (double)(expf(r[k] - top) / norm);
    }
}
"""

_C_LIB: list[Any] = []  # [ctypes.CDLL or None] once tried


def _cache_dir() -> Path:
    """``$CFGEN_CACHE_DIR``, else ``$XDG_CACHE_HOME/cfgen``, else ``~/.cache/cfgen``."""
    root = os.environ.get("CFGEN_CACHE_DIR")
    if root:
        return Path(root)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "cfgen"


def c_kernel() -> Any:
    """The C kernel library, compiled once per machine and cached; ``None`` if unavailable.

    Built with the system C compiler (``$CC`` or ``cc``, ``-O2``, no machine-specific flags:
    a shared home directory may serve different CPUs) into :func:`_cache_dir`; a build is
    written under a temporary name and renamed, so parallel workers never load a partial file.
    ``CFGEN_NO_CC=1`` disables it. Without it the compiler uses scikit-learn's kernels or the
    numpy walk; results are the same either way (checked when compiling each model).
    """
    if _C_LIB:
        return _C_LIB[0]
    lib = None
    if os.environ.get("CFGEN_NO_CC", "") in ("", "0"):
        try:
            lib = _load_c_kernel()
        except (OSError, subprocess.SubprocessError):
            lib = None
    _C_LIB.append(lib)
    return lib


def _load_c_kernel() -> Any:
    import ctypes
    import hashlib
    import platform
    import shutil
    import tempfile

    tag = hashlib.sha256((_C_SOURCE + platform.machine()).encode()).hexdigest()[:16]
    target = _cache_dir() / f"treekernel-{tag}.so"
    if not target.is_file():
        cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
        if cc is None:
            return None
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "treekernel.c"
            src.write_text(_C_SOURCE)
            built = Path(tmp) / "treekernel.so"
            subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", str(built), str(src), "-lm"],
                           check=True, capture_output=True, timeout=120)
            partial = target.with_name(f"{target.name}.{os.getpid()}.tmp")
            shutil.copyfile(built, partial)
            os.replace(partial, target)
    lib = ctypes.CDLL(str(target))
    p, i64 = ctypes.c_void_p, ctypes.c_int64
    for name in ("margin_f32_f64", "margin_f32_f32", "margin_f64_f64", "vote_f32"):
        fn = getattr(lib, name)
        fn.restype = i64
        fn.argtypes = [p, i64, i64, ctypes.c_double, p, p, p, p, p, i64, i64, p, p, p, p, p, p]
    lib.xgb_binary.restype = lib.xgb_softmax.restype = None
    lib.xgb_binary.argtypes = [p, i64, p]
    lib.xgb_softmax.argtypes = [p, i64, i64, p]
    return lib


class _CEngine:
    """Scores of all trees for all rows in one call of cfgen's C kernel (:func:`c_kernel`).

    Reads the compiled layout of :class:`CompiledEnsemble` directly (float32 or float64
    thresholds, adjacent children, base-score leaves first in each column's group) and sums
    tree by tree as the numpy path does: float64, float32 for XGBoost.
    """

    kernel = "c"
    mode = "scores"

    def __init__(self, comp: CompiledEnsemble, lib: Any) -> None:
        ens = comp.trees
        keep = [comp._feature, comp._threshold, comp._left, comp._roots, comp._tree_depth]
        self._dtype: type[np.floating]
        if ens.kind == "vote":
            self._fn = lib.vote_f32
            values = np.ascontiguousarray(comp._value_t.T)  # (n_nodes, n_classes)
            self._K, self._group, self._dtype = ens.n_classes, comp._n_eval, np.float64
        else:
            name = {"float32": "margin_f32_f64", "float64": "margin_f64_f64"}[
                np.dtype(comp._dtype).name]
            self._dtype = np.float32 if comp._margin.dtype == np.float32 else np.float64
            if self._dtype is np.float32:
                name = "margin_f32_f32"
            self._fn = getattr(lib, name)
            values = comp._margin
            self._K, self._group = ens.n_columns, comp._group
        keep.append(np.ascontiguousarray(values))
        self._keep = keep  # the kernel reads these arrays by address
        self._static = [a.ctypes.data for a in keep]
        self._zero = comp.trees.zero_below
        self._d = comp.n_features_in_
        self._buffers: dict[int, tuple[np.ndarray, np.ndarray, tuple[int, ...]]] = {}

    def _scratch(self, n: int) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
        """Per batch size: the output array, scratch memory and their addresses (reused)."""
        hit = self._buffers.get(n)
        if hit is None:
            if len(self._buffers) >= 16:
                self._buffers.clear()
            out = np.empty((n, self._K), dtype=self._dtype)
            # node, active rows, accumulators (8-byte slots), then the cast rows
            scratch = np.empty(3 * n + n * self._d, dtype=np.int64)
            base = scratch.ctypes.data
            hit = (out, scratch, (out.ctypes.data, base, base + 8 * n, base + 16 * n,
                                  base + 24 * n))
            self._buffers[n] = hit
        return hit

    def scores_of(self, X: Any) -> np.ndarray | None:
        """Scores (n, K) of raw rows ``X``; ``None`` if they need the generic checks (wrong
        shape or type, or a non-finite value: the caller then raises its usual error)."""
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self._d or X.dtype != np.float64:
            return None
        if not X.flags.c_contiguous:
            X = np.ascontiguousarray(X)
        n = X.shape[0]
        out, _, (o, node, act, acc, xs) = self._scratch(n)
        f, t, left, roots, depth, values = self._static
        bad = self._fn(X.ctypes.data, n, self._d, self._zero, f, t, left, roots, depth,
                       self._K, self._group, values, o, node, act, acc, xs)
        return None if bad else out.copy()

    def run(self, Xc: np.ndarray) -> np.ndarray:
        """Scores of rows already validated and cast (``CompiledEnsemble._check``)."""
        out = self.scores_of(Xc.astype(np.float64))
        if out is None:  # cannot happen for checked rows
            raise ValueError("rows failed the C kernel's checks after validation")
        return out


class _NativeEngine:
    """All trees in one call of scikit-learn's compiled gradient-boosting kernels.

    ``sklearn.ensemble._gradient_boosting`` walks sklearn ``Tree`` objects over float32 rows
    (``float64(x) <= threshold``) and adds ``scale * value[leaf]`` to ``out[row, k]``, stage by
    stage and column by column. Two uses of that:

    ``"scores"`` (sklearn GB / HGB, LightGBM: float64 sums)
        Each tree keeps its score column and its leaf margins, ``out`` starts at the base score:
        the kernel returns the scores, summed in the libraries' own order.
    ``"ids"`` (forests, XGBoost's float32 sums)
        Each tree gets its own output column with the compiled leaf ids as leaf values: one
        call returns every (row, tree) leaf; sums and links then run in numpy.

    Two kernels: ``"dense"`` (``predict_stages``, one C call per tree) and ``"sparse"`` (the CSR
    kernel, one C loop over rows and trees, fed an all-explicit CSR view of the rows: faster for
    many shallow trees). float64-comparing libraries (HGB, LightGBM) are made exact in float32
    by binning: per feature, ``x`` becomes the number of its split thresholds below ``x`` (an
    integer), and a split on the threshold of rank ``r`` tests ``bin <= r``.

    These are private scikit-learn functions, so :class:`CompiledEnsemble` checks every engine
    against its numpy traversal when compiling and falls back to that traversal if one fails.
    """

    def __init__(self, ens: TreeEnsemble, new_of_old: np.ndarray, roots: np.ndarray,
                 kernel: str) -> None:
        from sklearn.ensemble import _gradient_boosting as gb

        self.kernel = kernel
        self._call = gb.predict_stages if kernel == "dense" else (
            gb._predict_regression_tree_stages_sparse)
        self.mode = "ids" if ens.kind == "vote" or ens.library == "xgboost" else "scores"
        self._binned = ens.input_dtype is not np.float32
        grid = ens.feature_thresholds() if self._binned else []
        self._grid = [(j, t) for j, t in enumerate(grid) if t.size]
        thr = ens.threshold.copy()
        if self._binned:
            split = np.flatnonzero(ens.feature >= 0)
            for j, t in self._grid:
                on = split[ens.feature[split] == j]
                thr[on] = np.searchsorted(t, ens.threshold[on]).astype(np.float64)
        self._base = ens.base_score
        if self.mode == "scores":
            order = np.argsort(ens.tree_column, kind="stable").reshape(ens.n_columns, -1)
            holders = [_sklearn_tree(ens, int(r), thr, ens.value[:, k])
                       for k, col in enumerate(order) for r in ens.roots[col].tolist()]
            by_column = np.empty(order.shape, dtype=object)  # (column, stage)
            by_column.flat[:] = holders
            self._trees = np.ascontiguousarray(by_column.T)  # (stage, column)
        else:
            ids = new_of_old.astype(np.float64)
            holders = [_sklearn_tree(ens, int(r), thr, ids) for r in roots.tolist()]
            self._trees = np.empty((1, len(holders)), dtype=object)
            self._trees[0, :] = holders
        self._csr_cache: dict[tuple[int, int], _CSRRows] = {}

    def _rows(self, Xc: np.ndarray) -> np.ndarray | _CSRRows:
        if self._binned:
            B = np.zeros(Xc.shape, dtype=np.float32)
            for j, t in self._grid:
                B[:, j] = np.searchsorted(t, Xc[:, j])
            Xc = B
        if self.kernel == "dense":
            return Xc
        n, d = Xc.shape
        csr = self._csr_cache.get((n, d))
        if csr is None:
            if len(self._csr_cache) >= 16:
                self._csr_cache.clear()
            csr = self._csr_cache[n, d] = _CSRRows(n, d)
        csr.data = Xc.ravel()
        return csr

    def run(self, Xc: np.ndarray) -> np.ndarray:
        """``"scores"``: (n, K) scores; ``"ids"``: compiled leaf ids (n_eval_trees, n)."""
        n = Xc.shape[0]
        if self.mode == "scores":
            out = np.empty((n, self._trees.shape[1]))
            out[:] = self._base
            self._call(self._trees, self._rows(Xc), 1.0, out)
            return out
        out = np.zeros((n, self._trees.shape[1]))
        self._call(self._trees, self._rows(Xc), 1.0, out)
        return np.ascontiguousarray(out.T, dtype=np.intp)  # C order: sums run tree by tree


class _CSRRows:
    """The attributes the CSR kernel reads: every entry explicit, so values are never dropped."""

    __slots__ = ("data", "indices", "indptr", "shape")

    def __init__(self, n: int, d: int) -> None:
        self.shape = (n, d)
        self.indices = np.tile(np.arange(d, dtype=np.int32), n)
        self.indptr = np.arange(0, n * d + 1, d, dtype=np.int32)
        self.data = np.zeros(n * d, dtype=np.float32)


class _TreeHolder:
    """What the kernels read from an estimator: its ``tree_``."""

    __slots__ = ("tree_",)
    tree_: Any


def _sklearn_tree(ens: TreeEnsemble, root: int, thr: np.ndarray,
                  leaf_value: np.ndarray) -> _TreeHolder:
    """The tree at ``root`` as a sklearn ``Tree`` with ``leaf_value[node]`` at its leaves.

    ``root >= ens.n_nodes`` is a base-score leaf of the compiled layout (``ids`` mode): a
    single-leaf tree holding ``leaf_value[root]``.
    """
    from sklearn.tree._tree import NODE_DTYPE, Tree

    if root >= ens.n_nodes:  # a base-score leaf (ids mode): one leaf, its compiled id
        lo, hi, depth = root, root + 1, 0
        nodes = np.zeros(1, dtype=NODE_DTYPE)
        nodes["left_child"] = -1
        nodes["right_child"] = -1
        nodes["feature"] = -2
        values = leaf_value[root:root + 1]
    else:
        end = np.append(ens.roots[1:], ens.n_nodes)[int(np.searchsorted(ens.roots, root))]
        lo, hi = root, int(end)
        depth = int(ens.depth[lo:hi].max() - ens.depth[lo])
        nodes = np.zeros(hi - lo, dtype=NODE_DTYPE)
        leaf = ens.feature[lo:hi] < 0
        nodes["left_child"] = np.where(leaf, -1, ens.left[lo:hi] - lo)
        nodes["right_child"] = np.where(leaf, -1, ens.right[lo:hi] - lo)
        nodes["feature"] = np.where(leaf, -2, ens.feature[lo:hi])
        nodes["threshold"] = np.where(leaf, -2.0, thr[lo:hi])
        values = leaf_value[lo:hi]
    tree = Tree(ens.n_features, np.array([1], dtype=np.intp), 1)
    tree.__setstate__({"max_depth": depth, "node_count": hi - lo, "nodes": nodes,
                       "values": np.ascontiguousarray(values, dtype=np.float64).reshape(-1, 1, 1)})
    holder = _TreeHolder()
    holder.tree_ = tree
    return holder


class CompiledEnsemble:
    """A :class:`~cfgen.trees.TreeEnsemble` compiled into flat node arrays.

    Layout: the nodes of all trees are renumbered breadth-first so that the two children of
    every split node are adjacent (``right == left + 1``). Leaves point to themselves with a
    ``+inf`` threshold, so a fixed ``max_depth`` number of steps ``node = left[node] + (x > thr)``
    lands every (row, tree) pair on its leaf regardless of the trees' individual depths. Margin
    ensembles get one single-leaf tree per score column holding the base score, placed first in
    the column's group of trees, so the sum over the group starts from it as the libraries do.

    Exactness: inputs are cast to the library's dtype (float32 for sklearn trees and XGBoost,
    float64 for HGB and LightGBM). float32 thresholds are stored as the largest float32 ``<=`` the
    rule's threshold (:func:`_float32_floor`), so the float32 comparison decides exactly as the
    library. Sums over trees run one tree after another in the library's order: numpy reduces a
    non-innermost axis of >= 2 contiguous rows by adding whole slices in order (a single row is
    padded to two); float32 for XGBoost, float64 otherwise. See the module docstring for links.

    Inputs with NaN, values infinite in the input dtype or a wrong column count raise
    ``ValueError``.
    """

    trees: TreeEnsemble
    classes_: np.ndarray
    n_classes_: int
    n_features_in_: int
    n_trees: int
    max_depth: int

    def __init__(
        self, model: Any, engine: Literal["auto", "numpy", "c", "dense", "sparse"] = "auto"
    ) -> None:
        ens = TreeEnsemble.from_model(model)
        self.trees = ens
        self.classes_ = np.asarray(ens.classes_)
        self.n_classes_ = ens.n_classes
        self.n_features_in_ = ens.n_features
        self.n_trees = ens.n_trees
        self._dtype: type[np.floating] = ens.input_dtype
        self._engine: _NativeEngine | _CEngine | None = None
        self._compile(ens, engine)

    @property
    def engine(self) -> str:
        """``"c"`` (cfgen's C kernel, :func:`c_kernel`), ``"dense"`` / ``"sparse"``
        (scikit-learn's compiled kernels, :class:`_NativeEngine`) or ``"numpy"`` (the
        vectorised walk)."""
        return "numpy" if self._engine is None else self._engine.kernel

    # -- compilation ---------------------------------------------------------------------------

    def _groups(self, ens: TreeEnsemble) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """Roots in evaluation order plus base-score leaves appended to the node arrays.

        Returns (roots, extra_value (K,), extra_column (K,), group size). Vote ensembles keep
        their order and get no extra trees.
        """
        if ens.kind == "vote":
            return ens.roots, np.zeros(0), np.zeros(0, dtype=np.intp), ens.n_trees
        K = ens.n_columns
        counts = np.bincount(ens.tree_column, minlength=K)
        if not np.all(counts == counts[0]):
            raise ValueError("score columns have different numbers of trees")
        base_ids = ens.n_nodes + np.arange(K)
        order = np.argsort(ens.tree_column, kind="stable").reshape(K, -1)
        roots = np.column_stack([base_ids, ens.roots[order]]).ravel()
        return roots, ens.base_score, np.arange(K), int(counts[0]) + 1

    def _compile(self, ens: TreeEnsemble, engine: str) -> None:
        roots, base_value, base_col, group = self._groups(ens)
        K = base_col.shape[0]
        n_all = ens.n_nodes + K
        left = np.concatenate([ens.left, np.full(K, -1, dtype=np.intp)])
        right = np.concatenate([ens.right, np.full(K, -1, dtype=np.intp)])
        order = _adjacent_order(left, right, roots)  # new id -> old id
        new_of_old = np.empty(n_all, dtype=np.intp)
        new_of_old[order] = np.arange(n_all)
        is_split = left[order] >= 0
        new_left = np.where(is_split, new_of_old[np.maximum(left[order], 0)], np.arange(n_all))
        feature = np.where(is_split, np.concatenate([ens.feature, np.zeros(K, np.intp)])[order], 0)
        thr = np.where(is_split, np.concatenate([ens.threshold, np.zeros(K)])[order], np.inf)
        self._feature = feature.astype(np.intp)
        self._threshold = _float32_floor(thr) if self._dtype is np.float32 else thr
        self._left = new_left.astype(np.intp)
        self._is_leaf = ~is_split
        self._original = order  # new id -> TreeEnsemble global id (>= n_nodes: base leaves)
        self._roots = new_of_old[roots]
        tree_depth = np.zeros(roots.shape[0], dtype=np.intp)  # base-score leaves: 0
        real = roots < ens.n_nodes
        per_tree = np.zeros(ens.n_trees, dtype=np.intp)
        np.maximum.at(per_tree, ens.tree_of, ens.depth)
        tree_depth[real] = per_tree[np.searchsorted(ens.roots, roots[real])]
        self._tree_depth = tree_depth
        self._n_eval = int(roots.shape[0])
        self._group = group
        self._start_cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        self.max_depth = ens.max_depth
        if ens.kind == "vote":
            self._value_t = np.ascontiguousarray(ens.value[order].T)  # (n_classes, n_nodes)
            self._margin = np.zeros(0)
        else:
            col = np.concatenate([ens.tree_column[ens.tree_of], base_col])[order]
            per_node = np.concatenate([ens.value, np.diag(base_value)])[order]
            margin = per_node[np.arange(n_all), col]
            self._value_t = np.zeros((0, 0))
            self._margin = margin.astype(np.float32 if ens.library == "xgboost" else np.float64)
        if engine != "numpy":
            kernels = ("c", "dense", "sparse") if engine == "auto" else (engine,)
            self._engine = self._pick_engine(ens, new_of_old, roots, kernels)

    def _pick_engine(self, ens: TreeEnsemble, new_of_old: np.ndarray, roots: np.ndarray,
                     kernels: tuple[str, ...]) -> _NativeEngine | _CEngine | None:
        """The C kernel if available, else the fastest of scikit-learn's kernels and the numpy
        walk on a 50-row probe.

        Every kernel must agree exactly with the numpy walk on rows at and around the
        thresholds, or it is not used. Candidates are timed in alternating rounds (the best of
        each); the choice affects speed only, never results.
        """
        probe = self._check(_probe_rows(ens))
        want = self._scores_from(self._walk(probe), probe.shape[0])
        engines: list[_NativeEngine | _CEngine | None] = []
        for kernel in kernels:
            try:
                engine: _NativeEngine | _CEngine
                if kernel == "c":
                    lib = c_kernel()
                    if lib is None:
                        continue
                    engine = _CEngine(self, lib)
                else:
                    engine = _NativeEngine(ens, new_of_old, roots, kernel)
                if not np.array_equal(self._engine_scores(engine, probe), want):
                    continue
            except (ImportError, AttributeError, TypeError, ValueError):
                continue
            if kernel == "c" or len(kernels) == 1:
                return engine  # the C kernel: the fastest wherever measured
            engines.append(engine)
        if not engines:
            return None
        engines.append(None)  # the numpy walk
        best = [np.inf] * len(engines)
        for _ in range(3):
            for i, e in enumerate(engines):
                best[i] = min(best[i], _time(lambda e=e: self._probe_scores(e, probe)))
        return engines[int(np.argmin(best))]

    def _probe_scores(self, engine: _NativeEngine | _CEngine | None,
                      Xc: np.ndarray) -> np.ndarray:
        if engine is None:
            return self._scores_from(self._walk(Xc), Xc.shape[0])
        return self._engine_scores(engine, Xc)

    def _engine_scores(self, engine: _NativeEngine | _CEngine, Xc: np.ndarray) -> np.ndarray:
        out = engine.run(Xc)
        return out if engine.mode == "scores" else self._scores_from(out, Xc.shape[0])

    @property
    def n_nodes(self) -> int:
        """Total number of nodes over all trees."""
        return self.trees.n_nodes

    # -- evaluation ----------------------------------------------------------------------------

    def _start(self, n: int, d: int) -> tuple[np.ndarray, np.ndarray]:
        """Row offsets into the flattened X and root ids for all (tree, row) pairs (cached)."""
        key = (n, d)
        hit = self._start_cache.get(key)
        if hit is None:
            row_full = np.tile(np.arange(0, n * d, d, dtype=np.intp), self._n_eval)
            roots = np.repeat(self._roots, n)
            row_full.flags.writeable = roots.flags.writeable = False
            if len(self._start_cache) >= 16:
                self._start_cache.clear()
            hit = self._start_cache[key] = (row_full, roots)
        return hit

    def _leaf_nodes(self, Xc: np.ndarray) -> np.ndarray:
        """Compiled leaf ids, shape (n_eval_trees, n_rows), by the ids engine if any."""
        if self._engine is not None and self._engine.mode == "ids":
            return self._engine.run(Xc)
        return self._walk(Xc)

    def _walk(self, Xc: np.ndarray) -> np.ndarray:
        """Compiled leaf ids, shape (n_eval_trees, n_rows), by the numpy traversal.

        One vectorised step per tree level over all (tree, row) pairs. For larger problems the
        pairs already on a leaf are dropped after a few levels (``_COMPACT_AT``): most paths
        end well before ``max_depth``, so deep forests do much less work.
        """
        n, d = Xc.shape
        xflat = Xc.ravel()
        row_full, node = self._start(n, d)
        row_off = row_full
        feature, thr, left, is_leaf = self._feature, self._threshold, self._left, self._is_leaf
        last = self.max_depth - 1
        compact = self._n_eval * n >= _COMPACT_MIN_PAIRS
        state = node  # current node of every pair; `node` holds the active ones
        active: np.ndarray | None = None  # positions in `state` of the active pairs (None: all)
        for step in range(self.max_depth):
            idx = feature[node]
            idx += row_off
            go_right = xflat[idx] > thr[node]  # not (x <= t); x is never NaN here
            node = left[node]
            node += go_right
            if compact and step < last and step in _COMPACT_AT:
                if active is None:
                    state = node
                    active = np.flatnonzero(~is_leaf[node])
                else:
                    state[active] = node
                    active = active[~is_leaf[node]]
                node = state[active]
                row_off = row_full[active]
        if active is None:
            state = node
        else:
            state[active] = node
        return state.reshape(self._n_eval, n)

    def _check(self, X: Any) -> np.ndarray:
        Xc = _as_2d(X, self.n_features_in_, self._dtype)
        zero = self.trees.zero_below
        if zero > 0:  # LightGBM reads |x| <= 1e-35f as 0
            tiny = np.abs(Xc) <= zero
            if tiny.any():
                Xc = np.where(tiny, 0.0, Xc)
        return Xc

    def scores(self, X: np.ndarray) -> np.ndarray:
        """Raw scores (n, K) before the link (vote: summed class fractions)."""
        return self._scores_raw(X)

    def _scores_raw(self, X: Any) -> np.ndarray:
        """Scores of unchecked rows: straight into the C kernel when it can take them (it
        validates and casts itself), else the generic checks and engines."""
        if isinstance(self._engine, _CEngine):
            s = self._engine.scores_of(X)
            if s is not None:
                return s
        return self._scores(self._check(X))

    def _scores(self, Xc: np.ndarray) -> np.ndarray:
        if self._engine is not None and self._engine.mode == "scores":
            return self._engine.run(Xc)
        return self._scores_from(self._leaf_nodes(Xc), Xc.shape[0])

    def _scores_from(self, node: np.ndarray, n: int) -> np.ndarray:
        """Scores (n, K) from compiled leaf ids (n_eval_trees, n)."""
        if n == 1:  # keep a contiguous non-reduced axis of length >= 2 (see class docstring)
            node = np.repeat(node, 2, axis=1)
        if self.trees.kind == "vote":
            # (n_classes, n_trees, n_rows) summed over the trees in estimators_ order: sklearn's
            # `out += tree_proba` loop, bit for bit (checked in the tests)
            per_tree = np.take(self._value_t, node, axis=1)
            return per_tree.sum(axis=1).T[:n]
        per_tree = self._margin[node].reshape(-1, self._group, node.shape[1])
        return per_tree.sum(axis=1).T[:n]

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities (n, n_classes), float64 (see the module docstring for how exact)."""
        return self._proba(self._scores_raw(X))

    def _proba(self, s: np.ndarray) -> np.ndarray:
        ens = self.trees
        if ens.kind == "vote":
            proba = s.copy()
            if self.n_trees > 1:
                proba /= self.n_trees
            return proba
        if ens.library == "xgboost":
            return _xgb_proba(s, ens.link == "sigmoid")
        if ens.link == "softmax":
            return _softmax(s, ens.library)
        raw = 2.0 * s[:, 0] if ens.link == "sigmoid2" else s[:, 0]
        if ens.library == "lightgbm":
            p1 = 1.0 / (1.0 + np.exp(-raw))
        else:
            from scipy.special import expit

            p1 = expit(raw)
        proba = np.empty((s.shape[0], 2))
        proba[:, 1] = p1
        proba[:, 0] = 1 - p1
        return proba

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted class labels by the library's own rule (equal to the model's ``predict``)."""
        s = self._scores_raw(X)
        ens = self.trees
        if ens.kind == "margin" and ens.library == "sklearn":
            if s.shape[1] == 1:  # GB: raw >= 0 (sklearn's GB), HGB: raw > 0
                gb = ens.model_type == "GradientBoostingClassifier"
                index = (s[:, 0] >= 0) if gb else (s[:, 0] > 0)
                return self.classes_.take(index.astype(np.intp), axis=0)
            return self.classes_.take(np.argmax(s, axis=1), axis=0)
        proba = self._proba(s)
        if ens.library == "xgboost" and ens.n_columns == 1:  # XGBClassifier: p > 0.5
            return self.classes_.take((proba[:, 1] > 0.5).astype(np.intp), axis=0)
        return self.classes_.take(np.argmax(proba, axis=1), axis=0)

    def leaves(self, X: np.ndarray) -> np.ndarray:
        """Leaf reached in each tree, (n, n_trees), as node ids local to each tree.

        For sklearn models these are sklearn's node ids (like ``apply``), for XGBoost its node
        ids (like ``pred_leaf``); trees in the TreeEnsemble's order.
        """
        Xc = self._check(X)
        return (self.leaf_nodes(Xc) - self.trees.roots[None, :]).copy()

    def leaf_nodes(self, X: np.ndarray) -> np.ndarray:
        """Leaf reached in each tree, (n, n_trees), as TreeEnsemble global node ids."""
        Xc = self._check(X)
        glob = self._original[self._leaf_nodes(Xc)]  # (n_eval, n)
        keep = glob < self.trees.n_nodes  # drop the base-score leaves
        n = Xc.shape[0]
        glob = glob[keep].reshape(-1, n) if not keep.all() else glob
        tree = self.trees.tree_of[glob[:, 0]] if n else np.zeros(0, dtype=np.intp)
        out = np.empty((n, self.n_trees), dtype=np.intp)
        out[:, tree] = glob.T
        return out

    def __repr__(self) -> str:
        return (
            f"CompiledEnsemble({self.trees.model_type}, n_trees={self.n_trees}, "
            f"n_nodes={self.n_nodes}, max_depth={self.max_depth}, n_classes={self.n_classes_})"
        )


def _time(fn: Any, reps: int = 5) -> float:
    """Smallest of a few timings of ``fn()`` (seconds)."""
    import time

    best = np.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return float(best)


def _probe_rows(ens: TreeEnsemble, n: int = 50) -> np.ndarray:
    """Rows on, just below and just above the ensemble's thresholds (deterministic)."""
    rng = np.random.default_rng(0)
    X = np.zeros((n, ens.n_features))
    for j, t in enumerate(ens.feature_thresholds()):
        if t.size:
            t32 = t.astype(ens.input_dtype)
            vals = np.concatenate([t, np.nextafter(t32, -np.inf), np.nextafter(t32, np.inf),
                                   np.nextafter(t, np.inf)]).astype(np.float64)
            X[:, j] = vals[rng.integers(0, vals.size, size=n)]
    return X


CompiledForest = CompiledEnsemble  # the name genetic search and older code use


def _xgb_proba(s: np.ndarray, binary: bool) -> np.ndarray:
    """XGBClassifier's float32 probabilities from float32 margins, as float64 (n, C).

    With the C kernel: XGBoost's formulas in C with the C library's ``expf`` (the function
    XGBoost calls); without: the numpy emulation of glibc's ``expf``. Both bit-exact (tested).
    """
    lib = c_kernel()
    if lib is None:
        if binary:
            p = _xgb_sigmoid(s[:, 0])
            return np.column_stack([np.float32(1.0) - p, p]).astype(np.float64)
        return _xgb_softmax(s).astype(np.float64)
    m = np.ascontiguousarray(s, dtype=np.float32)
    n, K = m.shape
    proba = np.empty((n, 2 if binary else K))
    if binary:
        lib.xgb_binary(m.ctypes.data, n, proba.ctypes.data)
    else:
        lib.xgb_softmax(m.ctypes.data, n, K, proba.ctypes.data)
    return proba


def _softmax(s: np.ndarray, library: str) -> np.ndarray:
    if library == "lightgbm":  # LightGBM's Common::Softmax: exp(x - max) / sum, in order
        e = np.exp(s - s.max(axis=1, keepdims=True))
        total = e[:, 0].copy()
        for k in range(1, e.shape[1]):
            total += e[:, k]
        return e / total[:, None]
    from sklearn.utils.extmath import softmax

    return softmax(s.copy())


# --------------------------------------------------------------------------- fallback


class BatchedPredictor:
    """Any fitted classifier with ``predict_proba`` behind the :class:`Predictor` interface.

    ``batch_size`` splits large inputs into chunks (``None``: one call). Inputs are checked like
    :class:`CompiledEnsemble` (2-D, column count when the estimator records ``n_features_in_``,
    no NaN). ``predict`` is the argmax of ``predict_proba``, which for a few estimators (e.g.
    ``SVC(probability=True)``) can differ from the estimator's own ``predict``.
    """

    estimator: Any
    batch_size: int | None
    classes_: np.ndarray
    n_features_in_: int | None

    def __init__(self, estimator: Any, batch_size: int | None = None) -> None:
        if not hasattr(estimator, "predict_proba"):
            raise TypeError(f"{type(estimator).__name__} has no predict_proba")
        if not hasattr(estimator, "classes_"):
            raise ValueError(f"{type(estimator).__name__} is not fitted")
        if batch_size is not None and batch_size < 1:
            raise ValueError("batch_size must be a positive integer or None")
        self.estimator = estimator
        self.batch_size = batch_size
        self.classes_ = np.asarray(estimator.classes_)
        n_in = getattr(estimator, "n_features_in_", None)
        self.n_features_in_ = None if n_in is None else int(n_in)

    def _check(self, X: Any) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise ValueError(f"expected a 2-D array (n_rows, n_features), got shape {X.shape}")
        if self.n_features_in_ is not None and X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but the model expects {self.n_features_in_} features"
            )
        if np.isnan(X).any():
            _raise_non_finite(X)
        return X

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """The estimator's ``predict_proba``, evaluated ``batch_size`` rows at a time."""
        X = self._check(X)
        bs = self.batch_size
        if bs is None or len(X) <= bs:
            return np.asarray(self.estimator.predict_proba(X))
        parts = [self.estimator.predict_proba(X[i : i + bs]) for i in range(0, len(X), bs)]
        return np.concatenate(parts, axis=0)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """``classes_[argmax(predict_proba(X), axis=1)]``."""
        return self.classes_.take(np.argmax(self.predict_proba(X), axis=1), axis=0)

    def __repr__(self) -> str:
        return f"BatchedPredictor({type(self.estimator).__name__}, batch_size={self.batch_size})"


def compile_predictor(model: Any, batch_size: int | None = None) -> Predictor:
    """:class:`CompiledEnsemble` for supported tree models, else :class:`BatchedPredictor`.

    Supported: see :data:`cfgen.trees.SUPPORTED_MODELS` (a :class:`TreeEnsemble` is accepted
    too). Anything else with ``predict_proba`` (pipelines, linear models, tree models the view
    refuses, ...) is wrapped in a :class:`BatchedPredictor` with ``batch_size``; a
    ``CompiledEnsemble`` / ``BatchedPredictor`` is returned unchanged.
    """
    if isinstance(model, (CompiledEnsemble, BatchedPredictor)):
        return model
    try:
        return CompiledEnsemble(model)
    except UnsupportedModel:
        return BatchedPredictor(model, batch_size=batch_size)
