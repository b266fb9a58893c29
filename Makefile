# Roost. `make run` starts a development server; `make test` runs every check CI runs.
# Both create .venv on first use and re-install it when pyproject.toml changes.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: all venv run test lint check-imports format bench bench-import clean

all: test

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
	    echo "Roost needs Python 3.11 or newer; run e.g. 'make PYTHON=python3.12'" >&2; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/roost serve --dev

lint: $(STAMP) check-imports
	$(BIN)/ruff check src tests tools
	$(BIN)/ruff format --check src tests tools
	$(BIN)/mypy src
	$(BIN)/mypy --strict tools

# No import cycle inside src/roost, no import against the layering (docs/ARCHITECTURE.md).
check-imports:
	$(PYTHON) tools/check_imports.py src

test: lint
	$(BIN)/pytest

format: $(STAMP)
	$(BIN)/ruff check --fix src tests
	$(BIN)/ruff format src tests

# Fuzz by hand: every Hypothesis harness for ROOST_FUZZ_SECONDS seconds (default 300),
# then atheris, when installed in .venv, on the wire parser and on whole sessions for
# as long each. atheris' corpus grows in .venv/fuzz-corpus; crashing inputs are written
# to .venv/fuzz-crashes (copy them into tests/fuzz/regressions/ to keep them).
.PHONY: fuzz
fuzz: $(STAMP)
	ROOST_FUZZ_SECONDS=$${ROOST_FUZZ_SECONDS:-300} $(BIN)/pytest -q tests/fuzz
	@if $(BIN)/python -c 'import atheris' 2>/dev/null; then \
	    mkdir -p $(VENV)/fuzz-corpus/wire $(VENV)/fuzz-corpus/session $(VENV)/fuzz-crashes; \
	    for target in wire session; do \
	        $(BIN)/python -m tests.fuzz.atheris_harness --target $$target \
	            -max_total_time=$${ROOST_FUZZ_SECONDS:-300} \
	            -artifact_prefix=$(VENV)/fuzz-crashes/$$target- \
	            $(VENV)/fuzz-corpus/$$target tests/fuzz/regressions || exit 1; \
	    done; \
	else \
	    echo "atheris is not installed: '$(BIN)/pip install atheris' to add coverage-guided fuzzing"; \
	fi

# Roost against Dovecot (when installed), same users and mail; see bench/README.md.
# `make bench BENCH_ARGS=--quick` for the two-minute version.
bench: $(STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# `roost import` of a 100,000-message mbox: messages per second (issue 16: over 1,000).
bench-import: $(STAMP)
	$(BIN)/python bench/import_rate.py

# Removes build and tool state, never your data (./roost-data).
clean:
	rm -rf $(VENV) build dist src/*.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis
	find src tests -name __pycache__ -type d -prune -exec rm -rf {} +
