# The README's commands. `make demo` and `make test` set up .venv first (idempotent).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup services demo test test-readme lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --quiet -c constraints.txt -e '.[dev,onnx,hf]'
	touch $(STAMP)

# Services the tests use: PostgreSQL's initdb and pg_ctl (Debian's postgresql package) for the tune
# test that shares a study between workers; that test starts and stops its own server in a temp folder.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

services:
	@if command -v pg_ctl >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then \
	  echo "services: PostgreSQL binaries found"; \
	else \
	  echo "services: installing PostgreSQL (Debian package postgresql)"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql; \
	fi

demo: setup
	$(MAKE) --no-print-directory -f pipelines/vision-classify.mk DLTOOL=$(abspath $(BIN))/dltool

# The suite, and beside it the README run (test-readme) at the lowest priority on one thread: the suite
# leaves a core idle much of the time (a test is mostly one process), and the README run fills it.
test: setup
	@log=$$(mktemp); \
	nice -n 19 env OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -p no:cacheprovider -m readme \
	    tests/test_readme_runs.py >$$log 2>&1 & readme=$$!; \
	trap 'kill -INT $$readme 2>/dev/null; wait $$readme; rm -f $$log' INT TERM; \
	$(BIN)/python -m pytest -q; suite=$$?; \
	echo "--- the README run (make test-readme), alongside:"; wait $$readme; readme_status=$$?; \
	cat $$log; rm -f $$log; [ $$suite = 0 ] && [ $$readme_status = 0 ]

# every sh block of the README, in order, from a copy of the tracked files, training cut to one epoch
test-readme: setup
	$(BIN)/python -m pytest -q -m readme tests/test_readme_runs.py

lint: setup
	$(BIN)/ruff check dltool tests benchmarks

clean:
	rm -rf runs out .pytest_cache
