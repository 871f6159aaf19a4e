"""Tables as Markdown (GitHub pipes) and LaTeX (booktabs), without tabulate or jinja2."""

from __future__ import annotations

import math
from typing import Sequence

import pandas as pd

ARROW = {"up": "↑", "down": "↓"}


def fmt_num(v, digits: int = 3) -> str:
    """Fixed decimals scaled to magnitude: 0.953, 12.35, 123.5, 1235; '–' for missing."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, (bool,)):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    v = float(v)
    a = abs(v)
    if a >= 1000:
        return f"{v:.0f}"
    if a >= 100:
        return f"{v:.1f}"
    if a >= 10:
        return f"{v:.{max(digits - 1, 0)}f}"
    return f"{v:.{digits}f}"


def fmt_p(p) -> str:
    if p is None or not math.isfinite(float(p)):
        return "–"
    p = float(p)
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def fmt_cell(v) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int,)) or (hasattr(v, "dtype") and "int" in str(getattr(v, "dtype", ""))):
        return str(int(v))
    if v is None:
        return "–"
    try:
        return fmt_num(float(v))
    except (TypeError, ValueError):
        return str(v)


# ------------------------------------------------------------------------------ Markdown


def markdown(frame: pd.DataFrame, align: Sequence[str] | None = None) -> str:
    """A GitHub-flavoured Markdown table of already formatted (or plain) cells."""
    cols = [str(c) for c in frame.columns]
    if align is None:
        align = default_align(frame)
    sep = {"l": ":---", "r": "---:", "c": ":---:"}
    lines = [
        "| " + " | ".join(_md_escape(c) for c in cols) + " |",
        "|" + "|".join(sep[a] for a in align) + "|",
    ]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_md_escape(fmt_cell(v)) for v in row) + " |")
    return "\n".join(lines) + "\n"


def default_align(frame: pd.DataFrame) -> list[str]:
    """Left for text columns, right for numbers and formatted numbers."""
    out = []
    for c in frame.columns:
        col = frame[c]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            out.append("r")
            continue
        text = [str(v) for v in col if str(v) not in ("", "–")]
        numeric = bool(text) and all(_looks_numeric(t) for t in text)
        out.append("r" if numeric else "l")
    return out


def _looks_numeric(t: str) -> bool:
    t = t.replace("*", "").replace("<", "").split(" ± ")[0].split("/")[0].split(" (")[0]
    try:
        float(t)
    except ValueError:
        return False
    return True


def _md_escape(s: str) -> str:
    return str(s).replace("|", r"\|")


# ------------------------------------------------------------------------------ LaTeX

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "±": r"$\pm$",
    "↑": r"$\uparrow$",
    "↓": r"$\downarrow$",
    "–": "--",
    "×": r"$\times$",
    "<": r"$<$",
    ">": r"$>$",
    "≥": r"$\geq$",
    "≤": r"$\leq$",
    "—": "---",
    "…": r"\dots{}",
}


def latex_escape(s: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(s))


def latex(
    frame: pd.DataFrame,
    caption: str = "",
    label: str = "",
    align: Sequence[str] | None = None,
    bold: pd.DataFrame | None = None,
    group_column: str | None = None,
) -> str:
    """A booktabs ``table``; ``bold`` (same shape, bool) marks cells set in bold; a repeated
    value of ``group_column`` is printed once and groups are separated by ``\\midrule``."""
    cols = list(frame.columns)
    if align is None:
        align = default_align(frame)
    out = [
        r"\begin{table}[ht]",
        r"\centering",
        r"\small",
        r"\begin{tabular}{" + "".join(align) + "}",
        r"\toprule",
        " & ".join(latex_escape(c) for c in cols) + r" \\",
        r"\midrule",
    ]
    prev = None
    for i, row in enumerate(frame.itertuples(index=False)):
        cells = []
        for j, v in enumerate(row):
            text = latex_escape(fmt_cell(v))
            if group_column is not None and cols[j] == group_column:
                if v == prev:
                    text = ""
                elif prev is not None and j == 0:
                    out.append(r"\midrule")
            if bold is not None and bool(bold.iat[i, j]):
                text = r"\textbf{" + text + "}"
            cells.append(text)
        if group_column is not None:
            prev = row[cols.index(group_column)]
        out.append(" & ".join(cells) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}"]
    if caption:
        out.append(r"\caption{" + latex_escape(caption) + "}")
    if label:
        out.append(r"\label{" + label + "}")
    out.append(r"\end{table}")
    return "\n".join(out) + "\n"


def markdown_bold(frame: pd.DataFrame, bold: pd.DataFrame) -> pd.DataFrame:
    """Cells wrapped in ``**…**`` where ``bold`` is true (frame of formatted strings)."""
    out = frame.copy()
    for j, c in enumerate(out.columns):
        out[c] = [
            f"**{v}**" if bool(bold.iat[i, j]) and v not in ("", "–") else v
            for i, v in enumerate(out[c])
        ]
    return out
