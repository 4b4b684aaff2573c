# The two commands: `make run` (set up + start the app) and `make test` (set up + lint + every test).
# Without make, run the same steps by hand: see README.md, "Without make".
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8501

.PHONY: install run test lint browser bench clean

# galaxy_core.install swaps in TensorFlow's GPU build where nvidia-smi lists a GPU (GALAXY_LAB_TENSORFLOW=cpu|gpu
# decides instead); it needs only the standard library.
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml galaxy_core/install.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m galaxy_core.install requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

install: $(STAMP)

run: install
	$(BIN)/galaxy-lab serve --port $(PORT)

browser:
	bash scripts/ensure-chromium.sh

lint: install
	$(BIN)/ruff check .

test: install browser lint
	$(BIN)/python -m pytest

# All benchmarks (about half an hour on 2 cores); docs/benchmarks.md records their latest output.
bench: install
	$(BIN)/python benchmarks/bench_data.py
	$(BIN)/python benchmarks/bench_models.py
	$(BIN)/python benchmarks/bench_training.py
	$(BIN)/python benchmarks/bench_accuracy.py
	$(BIN)/python benchmarks/bench_explain.py
	$(BIN)/python benchmarks/bench_classify.py
	$(BIN)/python benchmarks/bench_cluster.py
	$(BIN)/python benchmarks/bench_hostile.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
