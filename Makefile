# `make demo` and `make test` work on a fresh clone: each creates .venv and installs what it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev

.PHONY: demo test lint typecheck lint-deploy readme-test image-test image-test-cuda bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)  ## train the six bundled pairs and print the summary table
	$(BIN)/quantrain run jobs/demo.yaml
	$(BIN)/quantrain models list
	$(BIN)/quantrain models verify

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

lint-deploy: $(STAMP)  ## hadolint the Dockerfiles, kustomize + schema-validate k8s/ (offline, seconds)
	PYTHON=$(BIN)/python scripts/lint-deploy.sh

readme-test:  ## the README's commands, top to bottom, on a fresh clone of HEAD (~6 min)
	scripts/readme-commands.sh

image-test:  ## build Dockerfile.cpu with buildah (no Docker engine), run a job and smoke tests in it; root
	scripts/image-test.sh

image-test-cuda:  ## build Dockerfile.cuda with buildah on an Ubuntu 24.04 base, check its CUDA builds; root
	scripts/image-test-cuda.sh

test: lint typecheck lint-deploy  ## ruff, mypy, deploy lint, then the whole test suite (GPU tests deselected)
	$(BIN)/python -m pytest -m "not gpu"

bench: $(STAMP)  ## foundation benchmarks; results go to benchmarks/RESULTS.md by hand
	$(BIN)/python benchmarks/bench_foundation.py
	$(BIN)/python benchmarks/bench_store.py

clean:
	rm -rf $(VENV) models .pytest_cache .ruff_cache .mypy_cache
