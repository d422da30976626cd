# make all        set up .venv and build every published file (45 GB)
# make test       set up .venv and run the whole test suite (end-to-end and fault tests included)
# make test-fast  the tests not marked slow: the inner loop, under a minute
# make test-slurm the workflow on a one-node SLURM started for the test (root; installs Debian's
#                 slurm-wlm, slurmdbd, munge, mariadb-server with apt-get where missing)
# make lint       ruff, snakemake --lint and snakefmt --check
# make lock       resolve envs/requirements.txt into envs/requirements.lock (every package, with hashes)
# make dag        draw the rule graph and the job DAG (needs graphviz's dot)
# make bench      measure engine, disk and build speed (writes benchmarks/results.json), then the
#                 loader's shuffled epoch (benchmarks/loader.json; builds a 5 GB training file), then
#                 the evaluation's reading rate (benchmarks/evaluate.json; builds a 1 GB and a 0.5 GB test file)
# make bench-storage  the 21 files stored as float32, gzip, lzf: size, build time, loader speed
#                 (benchmarks/storage.json; builds up to 45 GB per variant, one at a time, deleted after)
# make experiment train a CNN on the scale-2 training file, test it on the 17 test-only files
#                 (results/experiment/; installs the optional PyTorch extra into .venv)
# make bench-full the 45 GB set against a raw write of its bytes (benchmarks/full_build.json)
# make cross-check three small files built with numpy 1 (.venv-np1) and on aarch64 (qemu), compared
# make evidence   the public evidence on the recipe: fetches two public notebooks and a model's weights
#                 (HTTPS, pinned by sha256, into resources/evidence/; an existing verified copy is used),
#                 checks the printed ranges, fits the authors' figures, runs the model on rebuilt test
#                 images (every 10th); JSON into docs/evidence/, comparison figures into results/evidence/
# make references record the built published files as the reference checksums (after make all)
#
# .venv is made with $(PYTHON) when given (make PYTHON=/path/to/python3.12), otherwise
# with the first of python3.13, python3.12, python3.11 and python3 that is >= 3.11
# (envs/find-python.sh); make stops at once, naming what it found, when there is none.

PYTHON ?=
VENV := .venv
VENV_NP1 := .venv-np1
BIN := $(VENV)/bin
LOCK := envs/requirements.lock
# the optional extra `torch` (CPU build), installed into .venv by the targets that need it
LOCK_TORCH := envs/requirements-torch.lock
CORES ?= 8

.PHONY: evidence all test test-fast test-slurm bench bench-storage bench-full experiment torch cross-check references report dag lint lock clean-results need-dot

all: $(VENV)/.installed
	$(BIN)/snakemake --cores $(CORES) all

test: $(VENV)/.installed
	$(BIN)/python -m pytest -ra

test-fast: $(VENV)/.installed
	$(BIN)/python -m pytest -ra -m "not slow"

test-slurm: $(VENV)/.installed
	sh envs/install-slurm.sh
	$(BIN)/python -m pytest -ra -rP --run-slurm -m slurm

bench: $(VENV)/.torch-installed
	$(BIN)/python -m benchmarks.run
	$(BIN)/python -m benchmarks.loader_speed
	$(BIN)/python -m benchmarks.evaluate_speed

bench-storage: $(VENV)/.torch-installed
	$(BIN)/python -m benchmarks.storage

experiment: $(VENV)/.torch-installed
	$(BIN)/snakemake --cores $(CORES) experiment

torch: $(VENV)/.torch-installed

evidence: $(VENV)/.torch-installed
	$(BIN)/python -m mnist_large_scale.evidence

report: $(VENV)/.installed
	$(BIN)/snakemake --cores $(CORES) all
	$(BIN)/snakemake --report report.html

dag: need-dot $(VENV)/.installed
	$(BIN)/snakemake --rulegraph | dot -Tsvg > docs/rulegraph.svg
	$(BIN)/snakemake --dag | dot -Tsvg > dag.svg

need-dot:
	@command -v dot >/dev/null 2>&1 || { echo "make dag needs graphviz's dot, which is not on PATH: install graphviz (apt-get install graphviz, brew install graphviz or conda install graphviz)" >&2; exit 1; }

lint: $(VENV)/.installed
	$(BIN)/ruff check
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile workflow

# Every package at the version and with the hashes of the lock, nothing resolved at install time;
# the package itself is installed editable with the locked setuptools (no build isolation).
$(VENV)/.installed: $(LOCK) pyproject.toml envs/find-python.sh
	@python="$$(PYTHON='$(PYTHON)' sh envs/find-python.sh)" && echo "making $(VENV) with $$python" && "$$python" -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# PyTorch's CPU build on top of the main lock. PyPI has no CPU-only wheel of torch for Linux
# x86_64 (its wheels pull about 3 GB of CUDA libraries); the one pinned here is a local file that
# pip finds through its find-links (/opt/wheels on this kind of machine), so the lock is for
# Linux x86_64 and Python 3.11. Where that file is missing, pip stops naming torch==2.13.0+cpu.
$(VENV)/.torch-installed: $(VENV)/.installed $(LOCK_TORCH)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r $(LOCK_TORCH)
	touch $@

# Keeps the locked versions that still satisfy envs/requirements.txt; add --upgrade to move them all.
lock: $(VENV)/.installed
	$(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
		--custom-compile-command "make lock" envs/requirements.txt -o $(LOCK)
	$(BIN)/uv pip compile --quiet --python-version 3.11 --python-platform x86_64-manylinux_2_28 --generate-hashes \
		--find-links /opt/wheels --custom-compile-command "make lock" -c $(LOCK) envs/requirements-torch.txt -o $(LOCK_TORCH)

# After a change that changes bytes (NUMERICS_VERSION, the default recipe), `make all` finds no
# reference for its files; this records the new table, for tests/test_references.py and later builds.
references: $(VENV)/.installed
	$(BIN)/python -m mnist_large_scale.references results/*.h5

clean-results:
	rm -rf results logs

bench-full: $(VENV)/.installed
	$(BIN)/python -m benchmarks.full_build --cores 2

# numpy 1 for `make cross-check`; the package itself comes from workflow/ on PYTHONPATH
$(VENV_NP1)/.installed: envs/requirements-np1.txt envs/find-python.sh
	@python="$$(PYTHON='$(PYTHON)' sh envs/find-python.sh)" && "$$python" -m venv $(VENV_NP1)
	$(VENV_NP1)/bin/pip install --quiet -r envs/requirements-np1.txt
	touch $@

# the aarch64 root is made when root, debootstrap, qemu-user and Debian's packages can be had;
# otherwise benchmarks/arm64_root.sh says why and cross_env skips it
cross-check: $(VENV)/.installed $(VENV_NP1)/.installed
	bash benchmarks/arm64_root.sh
	$(BIN)/python -m benchmarks.cross_env
