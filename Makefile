# reglab: `make install`, `make train`, `make test`; see README.md.
VENV ?= .venv
PY := $(VENV)/bin/python
EXP ?= dropout_rate_fixed_n
SCALE ?= quick
LAUNCHER ?= joblib
ARGS ?=
JOBS ?= 2

.PHONY: install system-deps train test test-fast lint format sweep report bench bench-parts gpu-bundle tensorboard slurm-start slurm-stop clean

install:  ## make a venv and install reglab with its dev tools
	python3 -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[dev]'

system-deps:  ## (root) the system packages the tests use: SLURM, munge, Chromium (apt-get)
	bash scripts/system_deps.sh

train:  ## the default run: an MLP on MNIST (override anything with ARGS="key=value ...")
	$(VENV)/bin/reglab-train $(ARGS)

test:  ## the whole test suite on $(JOBS) workers (CI runs it); says first which system packages are missing
	@bash scripts/system_deps.sh --note
	$(PY) -m pytest -q -n $(JOBS) $(ARGS)

test-fast:  ## the inner loop (~2 min): tests/unit and the quick e2e tests, on $(JOBS) workers (pytest-xdist)
	$(PY) -m pytest -q -n $(JOBS) -m "not slow and not slurm and not browser" $(ARGS)

lint:
	$(VENV)/bin/ruff check src tests scripts
	$(VENV)/bin/ruff format --check src tests scripts

format:
	$(VENV)/bin/ruff check --fix src tests scripts
	$(VENV)/bin/ruff format src tests scripts

sweep:  ## one paper experiment as a Hydra multirun: make sweep EXP=... SCALE=quick|paper LAUNCHER=local|joblib|slurm|submitit_local
	$(VENV)/bin/reglab-train -m experiment=$(EXP) scale=$(SCALE) launcher=$(LAUNCHER) $(ARGS)

report:  ## the HTML report of the latest sweep of each experiment: reports/index.html
	$(VENV)/bin/reglab-report --out reports $(ARGS)

bench:  ## per-step cost of stacks (through the Trainer) vs a bare loop, Lightning, DataLoader; sweeps stacked vs joblib and where their time goes (scripts/bench.py; ARGS="--only sweeps", "--device cuda", "--baseline DIR")
	$(PY) scripts/bench.py $(ARGS)

bench-parts:  ## one stacked step's parts (vmap vs a hand-written baddbmm stack, VmapOrder vs a plain call, MemberSGD vs torch SGD), in one process (scripts/bench_parts.py)
	$(PY) scripts/bench_parts.py $(ARGS)

gpu-bundle:  ## wheels (hydra, omegaconf, submitit, reglab) and gzipped MNIST for an offline GPU machine with its own torch and Lightning, into .whl/ (then: bash scripts/gpu_check.sh there)
	PY=$(PY) bash scripts/build_gpu_bundle.sh

tensorboard:  ## serve the TensorBoard logs of all runs
	$(VENV)/bin/tensorboard --logdir $${REGLAB_LOG_DIR:-logs}

slurm-start:  ## start a one-node SLURM cluster on this machine (root; see docs/slurm.md)
	bash scripts/slurm_local.sh start

slurm-stop:
	bash scripts/slurm_local.sh stop

clean:
	rm -rf logs outputs multirun reports .pytest_cache
