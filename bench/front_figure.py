"""docs/front.png: one query's candidate set, its Pareto front and the members dpg_ga returns.

    PYTHONPATH=$PWD CFGEN_DATA_DIR=/work/shared/datasets .venv/bin/python bench/front_figure.py

The final choice's candidates (every valid row of the final pass) are captured by wrapping the
explainer's ``_choose``; the exact optimum (``method=exact``) is drawn as a vertical line.
"""

from __future__ import annotations

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from quality_common import ROOT, build, load, queries  # noqa: E402

from cfgen.search.select import nondominated_fronts  # noqa: E402

DATASET, QUERY = (sys.argv[1], int(sys.argv[2])) if len(sys.argv) > 2 else ("german_credit", 14)


def main() -> None:
    problem = load(DATASET)
    _, x, target = queries(problem, 20, 0)[QUERY]
    ex = build("dpg_ga", problem)
    seen: dict[str, np.ndarray] = {}
    choose = ex._choose

    def spy(C, k, ev):
        seen["C"] = C.copy()
        return choose(C, k, ev)

    ex._choose = spy  # type: ignore[method-assign]
    e = ex.explain(x, target, 5, np.random.default_rng([0, QUERY]))
    opt = build("exact", problem).explain(x, target, 1, np.random.default_rng(0))
    m = ex.metric
    C = seen["C"]
    C = C[np.asarray(problem.estimator.predict(C)) == target]
    ref = m.scaled(problem.X_train[problem.y_train == target])

    def objs(R):
        return (m.to(m.scaled(R), m.scaled(x)), np.count_nonzero(R != x, axis=1),
                m.nearest(m.scaled(R), ref))

    dist, changes, impl = objs(C)
    front = nondominated_fronts(np.column_stack([dist, changes, impl])) == 0
    fig, ax = plt.subplots(figsize=(7.5, 4.6), dpi=130)
    sc = ax.scatter(dist, impl, c=changes, cmap="viridis", s=14, alpha=0.55,
                    label=f"candidates ({len(C)})")
    ax.scatter(dist[front], impl[front], facecolors="none", edgecolors="k", s=46, lw=0.8,
               label=f"Pareto front ({int(front.sum())})")
    rd, rc, ri = objs(e.counterfactuals)
    marks = {"closest": "*", "sparsest": "s", "plausible": "^", "diverse": "o", "balanced": "D"}
    for role in dict.fromkeys(e.roles):
        idx = [i for i, r in enumerate(e.roles) if r == role]
        ax.scatter(rd[idx], ri[idx], marker=marks[role], s=150, c="tab:red",
                   edgecolors="k", zorder=5, label=f"returned: {role}")
        for i in idx:
            ax.annotate(f"{rc[i]} chg", (rd[i], ri[i]), xytext=(6, 4),
                        textcoords="offset points", fontsize=8)
    ax.axvline(opt.extra["objective"], color="tab:red", ls="--", lw=1,
               label="exact optimum (MILP)")
    fig.colorbar(sc, ax=ax, label="changed features")
    ax.set_xlabel("distance to the query (MAD-scaled L1 + 1 per changed categorical)")
    ax.set_ylabel("implausibility (distance to the\nnearest target-class training row)")
    ax.set_title(f"{DATASET}, test row {queries(problem, 20, 0)[QUERY][0]}: "
                 "what dpg_ga returns (k=5)", fontsize=10)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    out = ROOT / "docs" / "front.png"
    fig.savefig(out)
    print(out, e.roles, np.round(rd, 3).tolist(), rc.tolist(), np.round(ri, 3).tolist(),
          opt.extra["objective"])


if __name__ == "__main__":
    main()
