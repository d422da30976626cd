# make all    set up .venv and build every published file (45 GB)
# make test   set up .venv and run the whole test suite
# make bench  measure engine, disk and build speed (writes benchmarks/results.json)
# make bench-full  the 45 GB set against a raw write of its bytes (benchmarks/full_build.json)

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= 8

.PHONY: all test bench bench-full report dag lint clean-results

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
