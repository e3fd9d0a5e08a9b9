# One command per task. Everything runs inside .venv, created on demand.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export VIRTUAL_ENV := $(abspath $(VENV))
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: dev build wheel test lint bench demo soak redis slurm clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Dependencies are re-installed only when pyproject.toml changes; the package
# itself is installed (editable) by maturin in `build`.
$(VENV)/.deps: pyproject.toml | $(BIN)/python
	$(BIN)/python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
		extra = p['optional-dependencies']; print('\n'.join(p['dependencies'] + extra['dev'] + extra['mofa']))" > $(VENV)/requirements.txt
	$(BIN)/pip install --quiet -r $(VENV)/requirements.txt
	touch $@

## make dev: venv in .venv, dependencies, the Rust extension built in place.
dev: $(VENV)/.deps build

# The extension is abi3 (_runtime.abi3.so): Python would load a version-specific
# _runtime.cpython-*.so left by an older build before it.
build: | $(BIN)/python
	rm -f academy_ml/_runtime.cpython-*.so
	$(BIN)/maturin develop
	$(BIN)/python -c "import academy_ml._runtime"

## make wheel: one abi3 wheel (CPython 3.11+, manylinux) in dist/; a release build (33 min
## on 2 busy cores); installing it needs no Rust. A toolchain on glibc 2.34+ links 2.34's
## pthread_* symbols: on an older build machine pass MANYLINUX=manylinux_2_28 (say).
WHEEL_DIR ?= dist
MANYLINUX ?= manylinux_2_34
wheel: $(VENV)/.deps
	$(BIN)/maturin build --release --compatibility $(MANYLINUX) --out $(WHEEL_DIR)

## make test: everything CI runs.
test: redis slurm dev
	cargo test --locked
	$(BIN)/python -m pytest -q -n 2 --dist loadfile
	$(BIN)/python benchmarks/pipeline_search.py --quick
	$(BIN)/python benchmarks/exchange.py --quick
	$(BIN)/python benchmarks/placement.py --quick
	$(BIN)/python benchmarks/agent_mix.py --quick

## make lint: ruff, mypy, rustfmt, clippy, stub check.
lint: dev
	$(BIN)/ruff check academy_ml tests benchmarks examples
	$(BIN)/ruff format --check academy_ml tests benchmarks examples
	$(BIN)/mypy
	$(BIN)/python -m mypy.stubtest academy_ml._runtime
	cargo fmt --all --check
	cargo clippy --locked --all-targets -- -D warnings
	cargo clippy --locked --all-targets --features python -- -D warnings
	cargo clippy --locked --lib --features python,jemalloc -- -D warnings

## make bench: side-by-side benchmarks (release build); BENCH_ARGS="--pipelines 256" for the large batch.
bench: redis $(VENV)/.deps
	$(BIN)/maturin develop --release
	$(BIN)/python benchmarks/pipeline_search.py $(BENCH_ARGS)
	$(BIN)/python benchmarks/exchange.py
	$(BIN)/python benchmarks/placement.py
	$(BIN)/python benchmarks/agent_mix.py
	$(BIN)/python benchmarks/foreign.py
	$(BIN)/python benchmarks/trees.py

## make demo: the MOFA-style loop on embedded defaults (in-process exchange, Parsl LocalProvider), retrain vs --no-retrain.
demo: dev
	PYTHONPATH=examples $(BIN)/python -m mofa $(DEMO_ARGS)

## make soak: long runs behind the `slow` marker (ACADEMY_ML_SOAK_MINUTES=5: the MOFA loop under kills;
## ACADEMY_ML_FUZZ_SOAK_CASES=1000000: cases per decoder of the fuzz campaign, in a child process;
## Rust: 1,000,000 cache-entry cases per property, the plan fuzz at 100x its `make test` size).
soak: export ACADEMY_ML_FUZZ_SOAK_CASES ?= 1000000
soak: redis dev
	PROPTEST_CASES=1000000 cargo test --locked --test cache_fuzz
	PLAN_FUZZ_SCALE=100 cargo test --locked --test plan_fuzz
	$(BIN)/python -m pytest -m slow -q -s

## redis-server for the integration tests, installed through apt-get when absent.
redis:
	@command -v redis-server >/dev/null || { \
		echo "installing redis-server"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq redis-server >/dev/null; }

## slurm: a one-machine Slurm for the slurm kit's test, best effort (the test skips, saying why, without it).
slurm:
	@command -v slurmd >/dev/null || { \
		echo "installing slurm (munge, slurmctld, slurmd, slurm-client)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
			--no-install-recommends munge slurmctld slurmd slurm-client >/dev/null \
		|| echo "slurm could not be installed: the slurm kit test will skip"; }

clean:
	rm -rf $(VENV) target
