# The README's commands. `make demo` and `make test` set up .venv first (idempotent).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --quiet -c constraints.txt -e '.[dev,onnx]'
	touch $(STAMP)

demo: setup
	$(MAKE) --no-print-directory -f pipelines/vision-classify.mk DLTOOL=$(abspath $(BIN))/dltool

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check dltool tests benchmarks

clean:
	rm -rf runs out .pytest_cache
