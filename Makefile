# Two commands: `make run` (install into .venv, then the main job on the Humanloop export) and `make test`.
# Just the classifier: `make train` then `make api` (the prediction API alone on API_PORT, 4002).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATASET ?= humanloop
API_PORT ?= 4002
# Docker: the images are named $(IMAGE)-base / -trainer / -api; models live in the $(MODELS_VOLUME) volume.
IMAGE ?= data-debugger
MODELS_VOLUME ?= data-debugger-models
HUMANLOOP_DIR ?= $(abspath ../shared/data/humanloop)

.PHONY: install lock run test test-fast lint bench clean train api docker-base train-docker api-docker

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

# Ingest the Humanloop export if the dataset is missing, train a version unless the latest one was trained on
# the same data and options, print its metrics and confusion matrices (with the SVG images' paths).
train: install
	$(BIN)/data-debugger train --dataset $(DATASET) --ingest-if-missing --if-changed --confusion

# The production version (else the latest) behind the prediction API alone; refuses when none is trained.
api: install
	$(BIN)/data-debugger model-server --dataset $(DATASET) --port $(API_PORT) --require-model

# The same two steps in containers (untested here: no Docker engine where this project is built).
docker-base:
	docker build --target base -t $(IMAGE)-base .

train-docker: docker-base
	docker build -f trainer.Dockerfile --build-arg BASE=$(IMAGE)-base -t $(IMAGE)-trainer .
	docker run --rm -v $(MODELS_VOLUME):/data -v $(HUMANLOOP_DIR):/data-in:ro $(IMAGE)-trainer

api-docker: docker-base
	docker build -f api.Dockerfile --build-arg BASE=$(IMAGE)-base -t $(IMAGE)-api .
	docker run --rm -p 127.0.0.1:$(API_PORT):4002 -v $(MODELS_VOLUME):/data $(IMAGE)-api

test: install
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow and not browser and not labelstudio"

# ruff on everything; mypy (pyproject's [tool.mypy]: the pydantic plugin) on the three packages.
lint: install
	$(BIN)/ruff check service embeddings dashboard scripts tests
	$(BIN)/mypy service embeddings dashboard

bench: install
	$(BIN)/python scripts/bench_embeddings.py
	$(BIN)/python scripts/bench_ingest.py

clean:
	rm -rf $(VENV) data .pytest_cache
