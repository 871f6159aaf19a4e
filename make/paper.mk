# The paper table (included by the Makefile: `include make/paper.mk`). Each target sweeps into a
# fresh timestamped directory, points `latest` at it, then runs the report on exactly that
# directory. If a job of the sweep fails, the report is still written for the jobs that finished
# (and lists what is missing), docs/paper.md is left alone, and make exits non-zero.
# PAPER_ARGS adds overrides to the sweep, e.g. PAPER_ARGS="experiment_params.num_replications=3".

PAPER_ARGS ?=

paper:  ## the paper table: 14 datasets × 8 methods (dpg_ga, DiCE ×3, NICE ×3, exact) × 20 queries (≈ 1 h on 2 cores) → docs/paper.md
	@dir=outputs/paper/$$(date +%Y-%m-%d_%H-%M-%S); \
	$(PY) -m cfgen -m experiment=paper hydra.sweep.dir=$$dir $(PAPER_ARGS); status=$$?; \
	[ -d $$dir ] || exit 1; ln -sfn $$(basename $$dir) outputs/paper/latest; \
	if [ $$status -eq 0 ]; then $(PY) -m cfgen.report $$dir --doc docs/paper.md; \
	else $(PY) -m cfgen.report $$dir; echo "sweep failed (status $$status): docs/paper.md not updated"; exit $$status; fi

paper-quick:  ## a first look at the table: 3 small datasets × 6 methods × 5 queries (< 5 min)
	@dir=outputs/paper_quick/$$(date +%Y-%m-%d_%H-%M-%S); \
	$(PY) -m cfgen -m experiment=paper_quick hydra.sweep.dir=$$dir $(PAPER_ARGS); status=$$?; \
	[ -d $$dir ] || exit 1; ln -sfn $$(basename $$dir) outputs/paper_quick/latest; \
	$(PY) -m cfgen.report $$dir && exit $$status

paper-report:  ## tables again from the last `make paper` (or REPORT_DIRS="dir1 dir2") → docs/paper.md
	$(PY) -m cfgen.report $(or $(REPORT_DIRS),outputs/paper/latest) --doc docs/paper.md

.PHONY: paper paper-quick paper-report
