# impactstudy — `make help` lists the targets. STUDY selects the study (pipelines/$(STUDY)/study.toml).
STUDY ?= demo
STUDIES ?= 500
WORKERS ?= 2
COVERAGE_GRID ?= 1-4,20-40@6/20/40
SCHEDULER ?=
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
IS := $(BIN)/impactstudy

.DEFAULT_GOAL := help
.PHONY: help setup demo ingest link impact model report status verbatims validate test fuzz fuzz-ingest bench coverage clean

help: ## Show this help
	@echo "Usage: make TARGET [STUDY=$(STUDY)]"
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-zA-Z_-]+):.*## (.*)/  \1|\2/' | column -t -s '|'

setup: $(VENV)/.installed ## Create .venv and install impactstudy with its test tools (quick when done)

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

demo: $(VENV)/.installed ## Generate the synthetic demo study if it is absent (STUDY=demo)
	@if [ "$(STUDY)" = "demo" ] && [ ! -f data/raw/demo/truth.json ]; then $(IS) demo --study demo; fi

# each stage target is one `impactstudy run --until <stage>`: it runs that stage and what it reads from,
# each step only where its inputs, settings or code changed (the manifest decides; a no-op costs ~0.2 s)
ingest: $(VENV)/.installed demo ## Read each wave's raw file (only waves whose file or settings changed)
	@$(IS) run --study $(STUDY) --until $@

link: $(VENV)/.installed demo ## Resolve councils and link the waves into panels
	@$(IS) run --study $(STUDY) --until $@

impact: $(VENV)/.installed demo ## Estimate impact on administrative outcomes against comparison councils (tables/impact.csv)
	@$(IS) run --study $(STUDY) --until $@

model: $(VENV)/.installed demo ## Fit the change-over-time models (tables in data/processed/$(STUDY)/tables)
	@$(IS) run --study $(STUDY) --until $@

report: $(VENV)/.installed demo ## Run every stage; write reports/$(STUDY)/public/ (to publish) and internal/
	@$(IS) run --study $(STUDY) --until $@

status: $(VENV)/.installed ## Say which stages are up to date or stale, and why
	@$(IS) status --study $(STUDY)

verbatims: $(VENV)/.installed demo ## Write the free-text answers to coding sheets, one per coder (CODERS=AB,CD OVERLAP=0.2)
	@$(IS) verbatims --study $(STUDY) --coders $(or $(CODERS),coder) --overlap $(or $(OVERLAP),0)

validate: $(VENV)/.installed ## Check the study config against its raw files
	@$(IS) validate --study $(STUDY)

test: $(VENV)/.installed ## Run the test suite
	$(BIN)/pytest

FUZZ_MINUTES ?= 30
fuzz: $(VENV)/.installed ## Run the study fuzzer for FUZZ_MINUTES (default 30); failures listed in fuzz-findings.log
	FUZZ_MINUTES=$(FUZZ_MINUTES) FUZZ_EXAMPLES=1000000 FUZZ_LOG=$(CURDIR)/fuzz-findings.log nice -n 10 $(BIN)/pytest tests/fuzz -q -p no:cacheprovider

fuzz-ingest: $(VENV)/.installed ## Fuzz ingest with mutated CSV and damaged SPSS files for FUZZ_MINUTES (default 30), half each
	IMPACTSTUDY_FUZZ_MINUTES=$(FUZZ_MINUTES) nice -n 10 $(BIN)/pytest tests/ingest/test_fuzz_ingest.py -q -p no:cacheprovider -rs

bench: $(VENV)/.installed ## Time every stage on a national-scale study (writes bench/results.json, bench/impact_results.json)
	$(BIN)/python bench/run.py
	$(BIN)/python bench/impact_bench.py

coverage: $(VENV)/.installed ## Simulate STUDIES (500) studies per setting on Dask (WORKERS=2 local; SCHEDULER=tcp://host:8786 for a cluster): every model's interval coverage and test size, in docs/coverage.md; agreement and theme shares in docs/coding.md
	OPENBLAS_NUM_THREADS=1 $(BIN)/python -m impactstudy.coverage --studies $(STUDIES) --respondents "$(COVERAGE_GRID)" $(if $(SCHEDULER),--scheduler $(SCHEDULER),--workers $(WORKERS)) --docs docs/coverage.md
	$(BIN)/python bench/impact_coverage.py --panels 400  # the impact stage's overall ATT (bench/impact_coverage.json)
	OPENBLAS_NUM_THREADS=1 $(BIN)/python -m impactstudy.coverage.themes --studies $(STUDIES) --docs docs/coding.md  # agreement and theme-share intervals

clean: ## Remove the study's processed data and reports (never data/raw)
	rm -rf data/processed/$(STUDY) reports/$(STUDY)
