# Set-up and entry points. Everything a fresh machine needs is installed from here.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip install --constraint constraints.txt
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt Makefile | cksum | cut -d' ' -f1)
# Tools installed without their dependencies: their declared pins would replace torch 2.13 or pull
# torchvision/torchaudio, which have no CPU build here (DESIGN.md §5).
NO_DEPS := spikingjelly==0.0.0.0.14

.PHONY: setup demo test lint format clean

setup: $(STAMP)

$(STAMP):
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PIP) --quiet torch==2.13.0
	$(PIP) --quiet -e '.[test]'
	$(PIP) --quiet --no-deps $(NO_DEPS)
	rm -f $(VENV)/.installed-*
	touch $@

demo: setup
	$(VENV)/bin/spikestream demo --out out/demo

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks

test: setup lint
	$(VENV)/bin/pytest -q -n auto

format: setup
	$(VENV)/bin/ruff format src tests benchmarks
	$(VENV)/bin/ruff check --fix src tests benchmarks

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache .hypothesis
