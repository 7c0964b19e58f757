# Two commands set everything up on a fresh Debian machine with Python 3.11:
#   make demo   -- virtual environment, install, end-to-end demo on the embedded defaults
#   make test   -- virtual environment with the test extras, the whole suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
ARGS   ?=

.PHONY: demo test bench lint typecheck clean soak fuzz docs deps claims

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

# System packages the tests use, installed when missing (as root, with apt-get); without them those tests skip:
# skopeo (a real container client) for the server tests, PostgreSQL for the metadata backend tests.
deps:
	@command -v skopeo >/dev/null || { \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian's skopeo for the server tests"; \
	    apt-get update -qq && apt-get install -y -qq skopeo; \
	  else echo "skopeo is missing (the server tests will skip): sudo apt-get install skopeo" >&2; fi; }
	@$(PYTHON) -m tests.pg_server install   # Debian's postgresql: initdb/pg_ctl for tests/pg_server.py

demo: $(VENV)/.installed-cli
	$(BIN)/python -m ecrcrypt.demo $(ARGS)

# atheris (the fuzzer of fuzz/) ships Linux wheels; where pip has to build it, it needs clang with
# libFuzzer. Without it the short fuzzing runs of make test are skipped (the corpus replay still runs).
$(VENV)/.installed-atheris: | $(BIN)/python
	@$(BIN)/python -c "import atheris" 2>/dev/null || $(BIN)/python -m pip install -q -e ".[fuzz]" || { \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    apt-get install -y -qq clang && CLANG_BIN=$$(command -v clang) $(BIN)/python -m pip install -q -e ".[fuzz]"; \
	  fi; } || echo "atheris could not be installed: the short fuzzing runs will be skipped"
	@touch $@

test: deps $(VENV)/.installed-test $(VENV)/.installed-atheris $(VENV)/.installed-docs
	$(BIN)/ruff check .
	$(BIN)/ruff format --check --quiet .
	$(BIN)/mypy ecrcrypt tests benchmarks fuzz
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir $(VENV)/site-check
	$(BIN)/python -m pytest -n 2 $(ARGS)

# The documentation site (MkDocs, strict: a broken link or reference fails) into site/.
docs: $(VENV)/.installed-docs
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

bench: $(VENV)/.installed-bench $(VENV)/.installed-test
	$(BIN)/python -m benchmarks $(ARGS)

# The performance figures of README.md and docs/benchmarks.md, rendered from benchmarks/out/latest.json
# (commit the JSON with the pages; tests/docs/test_claims.py fails when they disagree).
claims: $(BIN)/python
	$(BIN)/python -m benchmarks.claims

# The crash suite with many more SIGKILLs (tests/ecr/test_crash_lifecycle.py); ITERATIONS per test.
# Then the fleet test (tests/fleet) with FLEET_ROUNDS rounds of its race in every host.
ITERATIONS ?= 1000
FLEET_ROUNDS ?= 10
soak: $(VENV)/.installed-test
	ECRCRYPT_CRASH_ITERATIONS=$(ITERATIONS) $(BIN)/python -m pytest -n 2 tests/ecr/test_crash_lifecycle.py tests/ecr/test_crash_lifecycle_postgres.py tests/ecr/test_race_write_once.py $(ARGS)
	ECRCRYPT_FLEET_ROUNDS=$(FLEET_ROUNDS) $(BIN)/python -m pytest tests/fleet $(ARGS)

# The long fuzzing run: FUZZ_SECONDS per target (docs/fuzzing.md); new inputs and crashes go to
# fuzz/out/<target>/. FUZZ_TARGETS narrows it, e.g. make fuzz FUZZ_TARGETS="message header".
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= $(shell $(PYTHON) -c "import sys; sys.path.insert(0, '.'); from fuzz import TARGETS; print(*TARGETS)")
fuzz: $(VENV)/.installed-test $(VENV)/.installed-atheris
	@for t in $(FUZZ_TARGETS); do \
	  echo "== fuzz $$t ($(FUZZ_SECONDS) s)"; \
	  $(BIN)/python -m fuzz $$t --out fuzz/out/$$t --seconds $(FUZZ_SECONDS) $(ARGS) 2>fuzz/out-$$t.log \
	    || { tail -40 fuzz/out-$$t.log; exit 1; }; \
	  grep -E "DONE" fuzz/out-$$t.log; rm -f fuzz/out-$$t.log; \
	done

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy ecrcrypt tests benchmarks fuzz

clean:
	rm -rf $(VENV) build dist site .pytest_cache .mypy_cache .hypothesis benchmarks/out/latest-*.json fuzz/out
