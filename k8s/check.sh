#!/bin/sh
# Render every kustomization of k8s/ (the overlays, Postgres, its restore, External Secrets),
# check the overlays' promises (k8s/check_manifests.py: Pod Security restricted, own
# ServiceAccounts, default-deny, traces and NATS TLS, KEDA fallbacks, digests in prod) and,
# when kubernetes-validate is on the PATH, the renders against the Kubernetes API schemas
# (custom resources are skipped: it has no schemas for them). Needs kubectl (its built-in
# kustomize) and Python with PyYAML (the project's .venv). Non-zero on the first failure.
#
#   k8s/check.sh
set -eu
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

for dir in k8s/overlays/dev k8s/overlays/prod k8s/cnpg k8s/cnpg-restore k8s/external-secrets; do
    file="$out/$(echo "$dir" | tr / _).yaml"
    kubectl kustomize "$dir" > "$file"
    echo "rendered $dir: $(grep -c '^kind:' "$file") objects"
done

python=.venv/bin/python
[ -x "$python" ] || python=python3
"$python" k8s/check_manifests.py "$out"/k8s_overlays_*.yaml

if command -v kubernetes-validate > /dev/null; then
    kubernetes-validate --strict --quiet --no-warn "$out"/*.yaml
    echo "valid against the Kubernetes schemas"
else
    echo "kubernetes-validate not found: rendered only"
fi
