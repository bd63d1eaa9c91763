#!/usr/bin/env bash
# hadolint over the three Dockerfiles with the repo's .hadolint.yaml (any finding fails).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/deploy-tools.sh
. scripts/deploy-tools.sh
"$HADOLINT" --version
"$HADOLINT" --config .hadolint.yaml Dockerfile.cpu Dockerfile.cuda Dockerfile.rocm
echo "hadolint: Dockerfile.cpu Dockerfile.cuda Dockerfile.rocm clean"
