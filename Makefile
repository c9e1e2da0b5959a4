# The README's two set-up commands. Each creates or updates .venv, installs what it needs, and is
# idempotent: a second run only redoes what changed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test

# Run the main job on the embedded defaults: build the KG, the literature index and the entity-linking
# name index from the committed bundle where they are not built yet (about 2 minutes on a fresh
# machine), print the KG statistics, then start the interactive entity lookup.
run: $(STAMP)
	$(BIN)/medkg kg build --if-missing
	$(BIN)/medkg index build --if-missing
	$(BIN)/medkg link-build --if-missing
	$(BIN)/medkg kg stats
	$(BIN)/medkg kg lookup

# Lint, then the default test suite (without the `slow` tests).
test: $(STAMP)
	$(BIN)/ruff check assistant kg pretrain tests benchmarks
	$(BIN)/pytest

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)
