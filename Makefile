# Two commands set everything up on a fresh Debian machine with Python 3.11:
#   make demo   -- virtual environment, install, end-to-end demo on the embedded defaults
#   make test   -- virtual environment with the test extras, the whole suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
ARGS   ?=

.PHONY: demo test bench lint typecheck clean soak

$(BIN)/python:
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  echo "python3 -m venv failed: installing Debian's python3-venv"; \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && apt-get install -y -qq python3-venv; \
	  elif command -v sudo >/dev/null; then \
	    sudo apt-get update -qq && sudo apt-get install -y -qq python3-venv; \
	  else echo "please install python3-venv" >&2; exit 1; fi; \
	  rm -rf $(VENV); $(PYTHON) -m venv $(VENV); }
	@$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed-%: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[$*]"
	@touch $@

demo: $(VENV)/.installed-cli
	$(BIN)/python -m ecrcrypt.demo $(ARGS)

test: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check --quiet .
	$(BIN)/mypy ecrcrypt tests benchmarks
	$(BIN)/python -m pytest -n 2 $(ARGS)

bench: $(VENV)/.installed-bench $(VENV)/.installed-test
	$(BIN)/python -m benchmarks $(ARGS)

# The crash suite with many more SIGKILLs (tests/ecr/test_crash_lifecycle.py); ITERATIONS per test.
ITERATIONS ?= 1000
soak: $(VENV)/.installed-test
	ECRCRYPT_CRASH_ITERATIONS=$(ITERATIONS) $(BIN)/python -m pytest -n 2 tests/ecr/test_crash_lifecycle.py tests/ecr/test_race_write_once.py $(ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy ecrcrypt tests benchmarks

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .hypothesis benchmarks/out
