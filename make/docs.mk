# Documentation figures and the browser test (included by the Makefile).
.PHONY: docs-figures test-browser

docs-figures:  ## regenerate docs/example_*.png and the example run report (docs/figures.md)
	$(PY) -m cfgen.plots.examples docs

test-browser:  ## render the HTML run report in headless Chromium (apt-get install -y chromium)
	$(PY) -m pytest -q -m browser tests/test_browser.py
