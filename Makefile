# Set-up and entry points. Everything a fresh machine needs is installed from here.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip install --constraint constraints.txt
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt Makefile | cksum | cut -d' ' -f1)
# Oracles installed without their dependencies: their declared requirements would replace torch 2.13
# or pull torchvision/torchaudio, which have no CPU build here (DESIGN.md §5). What they import at run
# time is listed in the `test` extra of pyproject.toml.
NO_DEPS := spikingjelly==2.0.0 neurobench==2.3.0
# Debian packages: real data (DESIGN.md §5: Fashion-MNIST; the sample videos of opencv-doc are fetched
# into a cache by spikestream.data.sources, apt-get download, no root needed) and the RTL tools
# (Icarus Verilog simulates the generated Verilog, Yosys synthesises it for the FPGA resource report).
DEBIAN_DATA := dataset-fashion-mnist iverilog yosys

.PHONY: setup data demo test lint format clean

setup: $(STAMP) data

$(STAMP):
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PIP) --quiet torch==2.13.0
	$(PIP) --quiet -e '.[test]'
	$(PIP) --quiet --no-deps $(NO_DEPS)
	rm -f $(VENV)/.installed-*
	touch $@

# Real data: install the Debian packages when missing (root, as on CI and developer machines), then
# fetch the sample videos into the cache. A machine without apt gets a warning; the loaders then say
# how to provide the data.
data: $(STAMP)
	@(for p in $(DEBIAN_DATA); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "install ok installed" || exit 1; done) || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEBIAN_DATA); } || \
		echo "warning: could not install $(DEBIAN_DATA); see README (data)"
	@$(PY) -c "from spikestream.data import find_sample_video as find; [find(n) for n in ('vtest.avi', 'Megamind.avi', 'tree.avi')]" || \
		echo "warning: could not fetch the opencv-doc sample videos; see README (data)"

demo: setup
	$(VENV)/bin/spikestream demo --out out/demo

lint: setup
	$(VENV)/bin/ruff check src tests $(wildcard benchmarks)

test: setup lint
	$(VENV)/bin/pytest -q -n auto

format: setup
	$(VENV)/bin/ruff format src tests $(wildcard benchmarks)
	$(VENV)/bin/ruff check --fix src tests $(wildcard benchmarks)

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache .hypothesis
