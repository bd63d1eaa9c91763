#!/usr/bin/env bash
# Render every kustomize overlay (the real kustomize: the one built into kubectl, or a
# standalone `kustomize`) and validate the result offline: Kubernetes schemas bundled with
# kubernetes-validate, KubeRay schemas vendored in k8s/schemas, and quantrain's rules for Ray
# pods (scripts/validate-k8s.py). Also checks the Secret template. Exit non-zero on any problem.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/deploy-tools.sh
. scripts/deploy-tools.sh
K8S_VERSION=${K8S_VERSION:-1.32}

if command -v kubectl >/dev/null 2>&1; then
    render() { kubectl kustomize "$1"; }
    echo "kustomize: $(kubectl version --client 2>/dev/null | grep -i kustomize || echo 'kubectl kustomize')"
elif command -v kustomize >/dev/null 2>&1; then
    render() { kustomize build "$1"; }
    echo "kustomize: $(kustomize version)"
else
    echo "check-k8s: needs kubectl (kubectl kustomize) or kustomize on PATH" >&2
    exit 2
fi

status=0
for overlay in k8s/overlays/*/; do
    overlay=${overlay%/}
    out=$(render "$overlay") || { echo "FAIL $overlay: kustomize build failed"; status=1; continue; }
    printf '%s\n' "$out" | "$PYTHON" scripts/validate-k8s.py --kubernetes-version "$K8S_VERSION" \
        --label "$overlay" - || status=1
done
"$PYTHON" scripts/validate-k8s.py --kubernetes-version "$K8S_VERSION" \
    k8s/base/s3-credentials.template.yaml || status=1
# The template must hold placeholders only.
if grep -E '^\s+AWS_(ACCESS_KEY_ID|SECRET_ACCESS_KEY):' k8s/base/s3-credentials.template.yaml \
    | grep -qv 'REPLACE_WITH_'; then
    echo "FAIL k8s/base/s3-credentials.template.yaml: a credential that is not a placeholder"
    status=1
fi
[ "$status" -eq 0 ] && echo "k8s: every overlay renders and validates"
exit "$status"
