"""Compiled kernels behind :class:`cfgen.predictor.CompiledEnsemble`, and XGBoost's float32 math.

* :func:`c_kernel` / :class:`CEngine`: a small C kernel compiled once per machine with the
  system C compiler and cached, loaded with ctypes (the fastest engine);
* :class:`NativeEngine`: scikit-learn's compiled gradient-boosting kernels fed with the
  compiled trees (no compiler needed);
* :func:`expf`, :func:`xgb_proba`: XGBoost's float32 sigmoid / softmax, bit for bit.

Every engine is checked against the numpy walk of :class:`CompiledEnsemble` when a model is
compiled; see there.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cfgen.trees import TreeEnsemble

if TYPE_CHECKING:
    from cfgen.predictor import CompiledEnsemble

__all__ = ["CEngine", "NativeEngine", "c_kernel", "expf", "xgb_proba"]

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


class CEngine:
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


class NativeEngine:
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


def xgb_proba(s: np.ndarray, binary: bool) -> np.ndarray:
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
