#!/usr/bin/env bash
# Everything deployment-related that can be checked offline: Dockerfiles and Kubernetes manifests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/lint-dockerfiles.sh
scripts/check-k8s.sh
