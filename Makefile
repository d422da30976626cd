# make all    set up .venv and build every published file (45 GB)
# make test   set up .venv and run the whole test suite
# make bench  measure engine, disk and build speed (writes benchmarks/results.json)
# make bench-full  the 45 GB set against a raw write of its bytes (benchmarks/full_build.json)
# make cross-check  three small files built with numpy 1 (.venv-np1) and on aarch64 (qemu), compared

PYTHON ?= python3
VENV := .venv
VENV_NP1 := .venv-np1
BIN := $(VENV)/bin
CORES ?= 8

.PHONY: all test bench bench-full cross-check report dag lint clean-results

all: $(VENV)/.installed
	$(BIN)/snakemake --cores $(CORES) all

test: $(VENV)/.installed
	$(BIN)/python -m pytest -ra

bench: $(VENV)/.installed
	$(BIN)/python -m benchmarks.run

report: $(VENV)/.installed
	$(BIN)/snakemake --cores $(CORES) all
	$(BIN)/snakemake --report report.html

dag: $(VENV)/.installed
	$(BIN)/snakemake --rulegraph | dot -Tsvg > docs/rulegraph.svg
	$(BIN)/snakemake --dag | dot -Tsvg > dag.svg

lint: $(VENV)/.installed
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile workflow

$(VENV)/.installed: envs/requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r envs/requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

clean-results:
	rm -rf results logs

bench-full: $(VENV)/.installed
	$(BIN)/python -m benchmarks.full_build --cores 2

# numpy 1 for `make cross-check`; the package itself comes from workflow/ on PYTHONPATH
$(VENV_NP1)/.installed: envs/requirements-np1.txt
	$(PYTHON) -m venv $(VENV_NP1)
	$(VENV_NP1)/bin/pip install --quiet --upgrade pip
	$(VENV_NP1)/bin/pip install --quiet -r envs/requirements-np1.txt
	touch $@

# the aarch64 root is made when root, debootstrap, qemu-user and Debian's packages can be had;
# otherwise benchmarks/arm64_root.sh says why and cross_env skips it
cross-check: $(VENV)/.installed $(VENV_NP1)/.installed
	bash benchmarks/arm64_root.sh
	$(BIN)/python -m benchmarks.cross_env
