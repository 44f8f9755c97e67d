# Two commands: `make run` (install into .venv, then the main job on the Humanloop export) and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install lock run test test-fast lint bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip wheel
	# torch first, pinned: its CPU wheel is on disk; anything else would pull the CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	# constraints.txt holds the versions last tested; the ranges in pyproject.toml stay the contract.
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Re-resolve within pyproject.toml's ranges and record the result (then run `make test`).
lock:
	rm -rf /tmp/dd-lock && $(PYTHON) -m venv /tmp/dd-lock
	/tmp/dd-lock/bin/pip install --quiet --upgrade pip wheel && /tmp/dd-lock/bin/pip install --quiet torch==2.13.0
	/tmp/dd-lock/bin/pip install --quiet -e '.[dev]'
	{ sed -n 1,2p constraints.txt; /tmp/dd-lock/bin/pip freeze --exclude-editable | sed 's/+cpu$$//'; } > constraints.new
	mv constraints.new constraints.txt

run: install
	$(BIN)/data-debugger run

test: install
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow and not browser and not labelstudio"

lint: install
	$(BIN)/ruff check service embeddings dashboard scripts tests

bench: install
	$(BIN)/python scripts/bench_embeddings.py
	$(BIN)/python scripts/bench_ingest.py

clean:
	rm -rf $(VENV) data .pytest_cache
