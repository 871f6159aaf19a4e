#!/usr/bin/env bash
# wheel-check.sh — the package as a user gets it: build the wheel, install it (with its
# dependencies, and NICE as `make install` does) into a fresh virtual environment, then run an
# experiment from a directory outside the checkout with no CFGEN_* variable set.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m pip wheel --no-deps --wheel-dir "$work/dist" . >/dev/null
wheel=$(ls "$work"/dist/*.whl)
echo "wheel: $(basename "$wheel") ($(du -h "$wheel" | cut -f1))"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet "$wheel"
"$work/venv/bin/pip" install --quiet --no-deps "nicex==0.2.3"
mkdir "$work/elsewhere"
cd "$work/elsewhere"
env -u CFGEN_DATA_DIR -u PYTHONPATH "$work/venv/bin/cfgen" dataset=german_credit \
    experiment_params.num_samples=2 experiment_params.num_replications=1 hydra.run.dir=run1
env -u CFGEN_DATA_DIR -u PYTHONPATH "$work/venv/bin/python" -m cfgen dataset=iris \
    experiment_params.num_samples=2 experiment_params.num_replications=1 hydra.run.dir=run2
for f in run1/summary.json run1/counterfactuals.csv run1/report.html run2/summary.json; do
  [ -s "$f" ] || { echo "wheel-check: $f missing" >&2; exit 1; }
done
if grep -q "$root" run1/config.yaml; then
  echo "wheel-check: the run read files from the checkout" >&2; exit 1
fi
echo "wheel-check: ok"
