"""The run report rendered by a real browser (headless Chromium): its tables hold the expected
cells, and every image is a data URI the browser decoded to the plot's own size.

Run with ``pytest -m browser tests/test_browser.py`` (needs Debian's ``chromium`` package).
"""

from __future__ import annotations

import base64
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# test-only: after load, write each image's decoded size into the DOM (the report has no script)
PROBE = ("<script>window.addEventListener('load',()=>{for(const i of document.images)"
         "{i.setAttribute('data-natural',i.naturalWidth+'x'+i.naturalHeight)}"
         "document.body.setAttribute('data-probed','1')})</script>")


class Dom(HTMLParser):
    """Tables (rows of cell texts) and images (attributes) of a dumped DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.images: list[dict[str, str]] = []
        self.body: dict[str, str] = {}
        self._cell: list[str] | None = None
        self._depth = 0

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th") and self.tables:
            self._cell = []
        elif tag == "img":
            self.images.append(a)
        elif tag == "body":
            self.body = a

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _chromium(args: list[str], tmp: Path) -> subprocess.CompletedProcess:
    profile = tmp / "profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=180, check=True)


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    from conftest import FAST, compose_config
    from test_changes import ensure_change_files

    from cfgen.experiment import run
    from cfgen.report.run_report import write_run_report

    out = tmp_path_factory.mktemp("german_browser")
    res = run(compose_config([*FAST, "dataset=german_credit", "output.plots=true",
                              "experiment_params.num_samples=1",
                              "experiment_params.num_replications=1"]), out)
    ensure_change_files(res, out)
    return res, out, write_run_report(out)


def test_report_renders_tables_and_images(report, tmp_path):
    from cfgen.changes import diff_table, read_changes

    res, out, page = report
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</main></body>", PROBE + "</main></body>"))
    dom = Dom()
    dom.feed(_chromium(["--dump-dom", probe.as_uri()], tmp_path).stdout)
    assert dom.body.get("data-probed") == "1"  # the page loaded and its load event ran

    setup = {row[0]: row[1] for row in dom.tables[0] if len(row) == 2}
    s = res.summary
    assert setup["dataset"].startswith(f"german_credit: {s['n_train']} train / {s['n_test']} test")
    assert setup["model accuracy"] == f"train {s['train_accuracy']:.3f}, test " \
                                      f"{s['test_accuracy']:.3f}"
    assert setup["time limit per query (s)"] == "none" and setup["seed"] == "42"

    # the first diff table is query 0's replication 0, cell for cell
    ch = read_changes(out / "changes.csv")
    q = int(ch["query"].iloc[0])
    rows = ch[(ch["query"] == q) & (ch["replication"] == 0)].reset_index(drop=True)
    qs = pd.read_csv(out / "queries.csv").set_index("query")
    want = diff_table(rows, query_predicted=str(qs.loc[q, "predicted"]),
                      query_probability=float(qs.loc[q, "probability"]))
    diff = next(t for t in dom.tables if t and t[0][:2] == ["feature", "query"])
    assert diff[0] == ["feature", *want.columns]
    assert diff[1:] == [[name, *(str(v).strip() for v in want.loc[name])] for name in want.index]
    assert "-" in {c for r in diff[1:] for c in r}  # unchanged cells are shown as such

    # every plot is an embedded PNG, decoded by the browser to the file's own size
    plots = {p.name: p for p in (out / "plots").glob("*.png")}
    assert len(dom.images) == len(plots) == 4
    for img in dom.images:
        head, b64 = img["src"].split(",", 1)
        assert head == "data:image/png;base64"
        data = base64.b64decode(b64)
        assert data == plots[img["data-name"]].read_bytes()
        w, h = _png_size(data)
        assert img["data-natural"] == f"{w}x{h}"


def test_report_screenshot_is_a_rendered_page(report, tmp_path):
    from matplotlib.image import imread

    _, _, page = report
    shot = tmp_path / "shot.png"
    _chromium([f"--screenshot={shot}", "--window-size=1280,1600", page.as_uri()], tmp_path)
    assert _png_size(shot.read_bytes()) == (1280, 1600)
    img = imread(shot)[..., :3]
    top = img[:200]
    assert (top.min(axis=2) < 0.3).mean() > 0.005  # dark text (the title, the nav links)
    # the setup table's grey header cells (#f0f0f2) are drawn
    grey = np.all(np.abs(img - np.array([0xf0, 0xf0, 0xf2]) / 255) < 0.01, axis=2)
    assert grey.mean() > 0.01
