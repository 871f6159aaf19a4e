"""Self-contained HTML pages: inline CSS, images as ``data:`` URIs, no script, no network.

A report is one file a person can mail or open from a cluster's scratch directory; nothing it
shows may depend on files next to it or on a connection.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d1d1f;
background:#fafafa}
main{max-width:1200px;margin:0 auto;padding:20px 28px 60px}
h1{font-size:24px;margin:8px 0 4px}h2{font-size:19px;margin:30px 0 8px;border-bottom:1px solid
#ddd;padding-bottom:4px}h3{font-size:16px;margin:22px 0 6px}
p.sub{color:#555;margin:0 0 14px}
table{border-collapse:collapse;margin:6px 0 14px;background:#fff;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 8px;vertical-align:top}
th{background:#f0f0f2;text-align:left;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.same{color:#aaa;text-align:center}
td.changed{background:#f3e9f8;font-weight:600}
tr.model td,tr.model th{background:#f7f7f9}
table.kv th{width:220px}
.scroll{overflow-x:auto;max-width:100%}
figure{margin:8px 0 18px}figure img{max-width:100%;height:auto;border:1px solid #e4e4e4;
background:#fff}figcaption{color:#555;font-size:12px}
.warn{background:#fff6e0;border:1px solid #f0d48a;padding:6px 10px;margin:6px 0;
overflow-wrap:anywhere}
nav a{margin-right:12px}
details{margin:8px 0}summary{cursor:pointer;color:#333}
code{background:#f0f0f2;padding:0 3px;border-radius:3px}
"""


def esc(s: object) -> str:
    return html.escape(str(s), quote=True)


def png_data_uri(path: str | Path) -> str:
    """``data:image/png;base64,…`` of a PNG file."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def figure(path: str | Path, caption: str = "", alt: str | None = None) -> str:
    """An embedded PNG with its caption."""
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    alt_text = esc(alt or caption or Path(path).name)
    return (
        f'<figure><img src="{png_data_uri(path)}" alt="{alt_text}"'
        f' data-name="{esc(Path(path).name)}">{cap}</figure>'
    )


def _is_num(v: object) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, (int, float)):
        return True
    t = str(v).replace("**", "").replace("<", "").split(" ± ")[0].strip()
    try:
        float(t)
    except ValueError:
        return False
    return True


def table(
    frame: pd.DataFrame,
    *,
    index: bool = False,
    bold: pd.DataFrame | None = None,
    cls: str = "",
    cell_class: pd.DataFrame | None = None,
    row_class: Sequence[str] | None = None,
    caption: str = "",
    raw: Sequence[str] = (),
) -> str:
    """A DataFrame of formatted cells as an HTML table (numbers right-aligned).

    ``bold`` and ``cell_class`` are frames of the same shape (bool / CSS class per cell);
    ``row_class`` one CSS class per row; ``index`` writes the index as the first column;
    cells of the columns named in ``raw`` are HTML already (links) and are not escaped.
    """
    from cfgen.report.render import fmt_cell

    cols = [str(c) for c in frame.columns]
    head = ([f"<th>{esc(frame.index.name or '')}</th>"] if index else []) + [
        f"<th>{esc(c)}</th>" for c in cols
    ]
    rows = []
    for i, (idx, rec) in enumerate(zip(frame.index, frame.itertuples(index=False), strict=True)):
        cells = [f"<th>{esc(idx)}</th>"] if index else []
        for j, v in enumerate(rec):
            if cols[j] in raw:
                cells.append(f"<td>{v}</td>")
                continue
            text = fmt_cell(v)
            classes = []
            if cell_class is not None and str(cell_class.iat[i, j]):
                classes.append(str(cell_class.iat[i, j]))
            if _is_num(text):
                classes.append("num")
            if bold is not None and bool(bold.iat[i, j]) and text not in ("", "–"):
                text_html = f"<b>{esc(text)}</b>"
            else:
                text_html = esc(text)
            attr = f' class="{" ".join(classes)}"' if classes else ""
            cells.append(f"<td{attr}>{text_html}</td>")
        rc = f' class="{esc(row_class[i])}"' if row_class is not None and row_class[i] else ""
        rows.append(f"<tr{rc}>" + "".join(cells) + "</tr>")
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    c = f' class="{esc(cls)}"' if cls else ""
    return (
        f'<div class="scroll"><table{c}>{cap}<thead><tr>{"".join(head)}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def kv_table(pairs: Iterable[tuple[str, object]]) -> str:
    """Two-column "setting: value" table."""
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in pairs)
    return f'<div class="scroll"><table class="kv"><tbody>{rows}</tbody></table></div>'


def diff_html(diff: pd.DataFrame, mark: str = "-") -> str:
    """A transposed diff table (:func:`cfgen.changes.diff_table`): changed cells shaded, ``-``
    greyed, the model rows (predicted, probability, distance, changes) set apart.

    The markup :func:`table` writes for it (``index=True``, ``cls="diff"``, one class per cell
    and row), built straight from the cells: a page holds hundreds of these."""
    from cfgen.changes import ROW_LABELS
    from cfgen.report.render import fmt_cell

    model_rows = set(ROW_LABELS) | {"role"}
    head = "<th>feature</th>" + "".join(f"<th>{esc(c)}</th>" for c in diff.columns)
    rows = []
    for name, rec in zip(diff.index, diff.itertuples(index=False), strict=True):
        model = name in model_rows
        cells = [f"<th>{esc(name)}</th>"]
        for j, v in enumerate(rec):
            text = fmt_cell(v)
            classes = []
            if j >= 1 and not model:
                classes.append("same" if v == mark else "changed")
            if _is_num(text):
                classes.append("num")
            attr = f' class="{" ".join(classes)}"' if classes else ""
            cells.append(f"<td{attr}>{esc(text)}</td>")
        rc = ' class="model"' if model else ""
        rows.append(f"<tr{rc}>" + "".join(cells) + "</tr>")
    return (
        f'<div class="scroll"><table class="diff"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _diff_html_via_table(diff: pd.DataFrame, mark: str = "-") -> str:
    """:func:`diff_html` through the generic :func:`table` (the reference its tests compare to)."""
    from cfgen.changes import ROW_LABELS

    model_rows = set(ROW_LABELS) | {"role"}
    cell_class = pd.DataFrame("", index=diff.index, columns=diff.columns)
    for i, name in enumerate(diff.index):
        if name in model_rows:
            continue
        for j in range(1, diff.shape[1]):
            cell_class.iat[i, j] = "same" if diff.iat[i, j] == mark else "changed"
    frame = diff.copy()
    frame.index.name = "feature"
    return table(
        frame,
        index=True,
        cell_class=cell_class,
        cls="diff",
        row_class=["model" if n in model_rows else "" for n in diff.index],
    )


def page(title: str, body: Sequence[str], subtitle: str = "") -> str:
    """A whole HTML document."""
    sub = f'<p class="sub">{esc(subtitle)}</p>' if subtitle else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width"><title>{esc(title)}</title>'
        f"<style>{CSS}</style></head><body><main><h1>{esc(title)}</h1>{sub}"
        + "\n".join(body)
        + "</main></body></html>\n"
    )


def warnings_html(warnings: Sequence[str]) -> str:
    return "".join(f'<div class="warn">{esc(w)}</div>' for w in warnings)
