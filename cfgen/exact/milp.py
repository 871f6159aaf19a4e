"""The mixed-integer program of the closest counterfactual in a voting tree ensemble, on HiGHS.

Variables (see docs/exact.md): per numeric feature ``y_{j,i} = [v_j >= c_{j,i}]`` for its
cuts (binary, ``y_{j,i} >= y_{j,i+1}``); per categorical feature one-hot ``z_{j,c}`` over its
allowed codes; per tree one ``lambda_{t,l} in [0, 1]`` per reachable leaf with
``sum_l lambda_{t,l} = 1``. A split on a cut forbids the leaves on the side not taken
(``sum_{l in left} lambda <= 1 - y``, ``sum_{l in right} lambda <= y``; Misic's formulation,
integral in ``lambda`` once ``y`` is), the target's summed leaf fractions must beat every lower
class by ``tie_margin`` and tie or beat every higher class (``np.argmax`` keeps the lowest index
on ties), and the objective is the exact distance of the chosen cells' representatives.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cfgen.exact.cells import LEFT, RIGHT, CategoricalCells, NumericCells
from cfgen.exact.forest import Ensemble, Tree

Cells = NumericCells | CategoricalCells | None  # None: the feature cannot move


@dataclass
class Expr:
    """A linear expression ``sum coef[c] * col_c + const``."""

    coef: dict[int, float] = field(default_factory=dict)
    const: float = 0.0

    def add(self, col: int, v: float) -> None:
        self.coef[col] = self.coef.get(col, 0.0) + v


@dataclass
class Rows:
    """Constraint rows collected before being passed to HiGHS in row-wise form."""

    index: list[np.ndarray] = field(default_factory=list)
    value: list[np.ndarray] = field(default_factory=list)
    lower: list[float] = field(default_factory=list)
    upper: list[float] = field(default_factory=list)

    def add(self, cols, vals, lo: float, hi: float) -> None:
        self.index.append(np.asarray(cols, dtype=np.int32))
        self.value.append(np.asarray(vals, dtype=np.float64))
        self.lower.append(lo)
        self.upper.append(hi)

    def add_expr(self, e: Expr, lo: float, hi: float) -> None:
        """``lo <= e <= hi`` (the expression's constant moved to the bounds)."""
        self.add(list(e.coef), list(e.coef.values()), lo - e.const, hi - e.const)

    def __len__(self) -> int:
        return len(self.lower)


class Formulation:
    """The MILP of one query and target; :meth:`decode` maps a solution back to a row."""

    def __init__(
        self, ensemble: Ensemble, cells: list[Cells], x: np.ndarray, target: int, tie_margin: float
    ) -> None:
        self.x = np.asarray(x, dtype=float)
        self.cast = ensemble.cast
        self.cells = cells
        self.cost: list[float] = []
        self.integer: list[bool] = []
        self.upper: list[float] = []
        self.offset = 0.0
        self.rows = Rows()
        self.cols: dict[int, np.ndarray] = {}  # feature -> its y (numeric) or z (categorical)
        self.leaf_cols: list[tuple[Tree, dict[int, int]]] = []  # per non-constant tree
        for j, c in enumerate(cells):
            if isinstance(c, NumericCells) and len(c.cuts):
                self._numeric(j, c)
            elif isinstance(c, CategoricalCells) and len(c.codes) > 1:
                self._categorical(j, c)
        self.score = [Expr(const=float(b)) for b in ensemble.base]
        for tree in ensemble.trees:
            self._tree(tree)
        if len(self.score) == 1:  # binary margin model: class 1 iff the score is > 0
            s = self.score[0]
            if target == 1:
                self.rows.add_expr(s, tie_margin, np.inf)
            else:
                self.rows.add_expr(s, -np.inf, 0.0)
            return
        for other in range(len(self.score)):
            if other != target:
                diff = self._minus(self.score[target], self.score[other])
                self.rows.add_expr(diff, tie_margin if other < target else 0.0, np.inf)

    # ------------------------------------------------------------------ columns
    def _new(self, n: int, cost, integer: bool, upper: float = 1.0) -> np.ndarray:
        start = len(self.cost)
        self.cost.extend(np.broadcast_to(np.asarray(cost, dtype=float), (n,)).tolist())
        self.integer.extend([integer] * n)
        self.upper.extend([upper] * n)
        return np.arange(start, start + n)

    def _numeric(self, j: int, c: NumericCells) -> None:
        m, q = len(c.cuts), c.q
        step = np.diff(c.costs)  # cost(i) - cost(i-1) for i = 1..m (on y_i)
        coef = step.copy()
        self.offset += float(-step[:q].sum())  # for i <= q: (1 - y_i) * (cost(i-1) - cost(i))
        y = self._new(m, coef, integer=True)
        self.cols[j] = y
        for a, b in zip(y[:-1], y[1:], strict=True):
            self.rows.add([a, b], [1.0, -1.0], 0.0, np.inf)

    def _categorical(self, j: int, c: CategoricalCells) -> None:
        z = self._new(len(c.codes), c.costs, integer=True)
        self.cols[j] = z
        self.rows.add(z, np.ones(len(z)), 1.0, 1.0)

    # ------------------------------------------------------------------ trees
    def _split(self, j: int, t: float) -> int:
        """LEFT / RIGHT when the split is constant here, else its cut: the 1-based cut index
        (numeric: right exactly when ``y_cut = 1``) or the first code sent right."""
        c = self.cells[j]
        if j not in self.cols or c is None:
            return RIGHT if float(self.cast(self.x[j : j + 1])[0]) > t else LEFT
        if isinstance(c, NumericCells):
            return c.lookup(t)
        return c.first_code(t)

    def _tree(self, tree: Tree) -> None:
        """Leaves reachable from the query's domain and, per cut the tree uses, the leaves
        wholly on each side of it (whatever node they hang from: tighter than per-node)."""
        boxes: dict[int, dict[int, tuple[int, int]]] = {}
        cuts: set[tuple[int, int]] = set()

        def walk(n: int, box: dict[int, tuple[int, int]]) -> None:
            while tree.left[n] >= 0:
                j = int(tree.feature[n])
                cut = self._split(j, float(tree.threshold[n]))
                if cut == LEFT or cut == RIGHT:
                    n = int(tree.left[n] if cut == LEFT else tree.right[n])
                    continue
                lo, hi = box.get(j, (0, self._width(j)))
                if cut <= lo:  # every value still possible here goes right
                    n = int(tree.right[n])
                elif cut >= hi:
                    n = int(tree.left[n])
                else:
                    cuts.add((j, cut))
                    walk(int(tree.left[n]), {**box, j: (lo, cut)})
                    n, box = int(tree.right[n]), {**box, j: (cut, hi)}
            boxes[n] = box

        walk(0, {})
        leaves = list(boxes)
        if len(leaves) == 1:
            for k, e in enumerate(self.score):
                e.const += float(tree.value[leaves[0], k])
            return
        cols = self._new(len(leaves), 0.0, integer=False)
        self.leaf_cols.append((tree, dict(zip(leaves, cols.tolist(), strict=True))))
        self.rows.add(cols, np.ones(len(cols)), 1.0, 1.0)
        for j, cut in sorted(cuts):
            lo = np.array([boxes[n].get(j, (0, self._width(j)))[0] for n in leaves])
            hi = np.array([boxes[n].get(j, (0, self._width(j)))[1] for n in leaves])
            rc, rv = self._right(j, cut)
            left, right = cols[hi <= cut], cols[lo >= cut]
            # leaves wholly left of the cut <= 1 - right(.), wholly right <= right(.)
            self.rows.add(
                np.concatenate([left, rc]), np.concatenate([np.ones(len(left)), rv]), -np.inf, 1.0
            )
            self.rows.add(
                np.concatenate([right, rc]),
                np.concatenate([np.ones(len(right)), -rv]),
                -np.inf,
                0.0,
            )
        vals = tree.value[leaves]
        for k, e in enumerate(self.score):
            for col, v in zip(cols.tolist(), vals[:, k].tolist(), strict=True):
                if v:
                    e.add(col, v)

    def _width(self, j: int) -> int:
        """Cells of feature ``j`` are ``0..width-1`` (segments, or code positions)."""
        c = self.cells[j]
        return len(c.cuts) + 1 if isinstance(c, NumericCells) else len(c.codes)  # type: ignore[union-attr]

    def _right(self, j: int, cut: int) -> tuple[np.ndarray, np.ndarray]:
        """Columns and coefficients of 'feature ``j`` is right of ``cut``' (cells >= cut)."""
        cols = self.cols[j]
        if isinstance(self.cells[j], NumericCells):
            return cols[cut - 1 : cut], np.ones(1)
        return cols[cut:], np.ones(len(cols) - cut)

    @staticmethod
    def _minus(a: Expr, b: Expr) -> Expr:
        out = Expr(dict(a.coef), a.const - b.const)
        for col, v in b.coef.items():
            out.add(col, -v)
        out.coef = {c: v for c, v in out.coef.items() if abs(v) > 1e-15}
        return out

    # ------------------------------------------------------------------ cuts on cells
    def _same_cell(self, j: int, cell: int) -> Expr:
        """1 exactly when feature ``j`` is in its segment / code position ``cell``."""
        c, cols = self.cells[j], self.cols[j]
        e = Expr()
        if isinstance(c, CategoricalCells):
            e.add(int(cols[cell]), 1.0)
            return e
        m = len(cols)
        if cell == 0:
            e.const = 1.0
        else:
            e.add(int(cols[cell - 1]), 1.0)
        if cell < m:
            e.add(int(cols[cell]), -1.0)
        return e

    def query_cells(self) -> dict[int, int]:
        """Per movable feature, the cell holding the query."""
        out = {}
        for j in self.cols:
            c = self.cells[j]
            assert c is not None
            out[j] = c.q
        return out

    def exclude_cells(self, chosen: dict[int, int]) -> None:
        """No-good cut: at least one movable feature leaves the cell it has in ``chosen``."""
        e = Expr()
        for j, cell in chosen.items():
            s = self._same_cell(j, cell)
            e.const += s.const
            for col, v in s.coef.items():
                e.add(col, v)
        self.rows.add_expr(e, -np.inf, len(chosen) - 1.0)

    def keep_one_of(self, changed: list[int]) -> None:
        """At least one feature of ``changed`` stays in the query's cell (unchanged)."""
        q = self.query_cells()
        e = Expr()
        for j in changed:
            s = self._same_cell(j, q[j])
            e.const += s.const
            for col, v in s.coef.items():
                e.add(col, v)
        self.rows.add_expr(e, 1.0, np.inf)

    # ------------------------------------------------------------------ solution
    def point(self, row: np.ndarray) -> np.ndarray | None:
        """The column vector of ``row`` (a MILP start), or ``None`` when ``row`` leaves the
        cells (a value outside the domains)."""
        sol = np.zeros(len(self.cost))
        for j, cols in self.cols.items():
            c, v = self.cells[j], float(row[j])
            if isinstance(c, NumericCells):
                sol[cols[: int(np.searchsorted(c.cuts, v, side="right"))]] = 1.0
            else:
                assert isinstance(c, CategoricalCells)
                hit = np.flatnonzero(c.codes == v)
                if not len(hit):
                    return None
                sol[cols[int(hit[0])]] = 1.0
        r32 = self.cast(row)
        for tree, col_of in self.leaf_cols:
            n = 0
            while tree.left[n] >= 0:
                n = int(
                    tree.left[n] if r32[tree.feature[n]] <= tree.threshold[n] else tree.right[n]
                )
            if n not in col_of:
                return None
            sol[col_of[n]] = 1.0
        return sol

    def decode(self, sol: np.ndarray) -> tuple[np.ndarray, dict[int, int]]:
        """The row of a solution and the cell of each movable feature."""
        row = self.x.copy()
        chosen: dict[int, int] = {}
        for j, cols in self.cols.items():
            c = self.cells[j]
            v = np.rint(sol[cols])
            if isinstance(c, NumericCells):
                s = int(v.sum())
                row[j] = c.reps[s]
            else:
                assert isinstance(c, CategoricalCells)
                s = int(np.argmax(sol[cols]))
                row[j] = c.codes[s]
            chosen[j] = s
        return row, chosen
