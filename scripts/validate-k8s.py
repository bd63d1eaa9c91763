#!/usr/bin/env python3
"""Validate Kubernetes manifests offline: schemas, then quantrain's own rules for Ray pods.

  kubectl kustomize k8s/overlays/cpu | validate-k8s.py -        # rendered overlay on stdin
  validate-k8s.py k8s/base/s3-credentials.template.yaml        # plain files

Schemas (strict: an unknown field is an error, as a typo would be):
  - built-in kinds: the Kubernetes OpenAPI schemas bundled with the `kubernetes-validate`
    package (no download), for --kubernetes-version;
  - ray.io/v1 RayJob, RayCluster, RayCronJob: the vendored schemas in k8s/schemas/, whose pod
    templates point into those same Kubernetes schemas.
Rules on every pod template of a Ray or batch resource:
  - GPU limits equal GPU requests (`*/gpu` extended resources cannot be overcommitted);
  - /dev/shm is mounted from a memory-backed emptyDir with a sizeLimit (Ray's object store);
  - no container runs as root: runAsNonRoot on the pod.
Exit status 1 and one line per problem if anything fails.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from kubernetes_validate import utils as kv_utils
from referencing import Registry, Resource

SCHEMAS = Path(__file__).resolve().parent.parent / "k8s" / "schemas"
RAY_KINDS = {"RayJob", "RayCluster", "RayCronJob"}


def _k8s_definitions(version: str) -> Resource:
    """The bundled strict Kubernetes definitions, under their own $id."""
    supported = [v for v in kv_utils.all_versions() if kv_utils.major_minor(v) <= version]
    if not supported:
        raise SystemExit(f"validate-k8s: kubernetes-validate has no schemas for {version}")
    schema_dir = f"kubernetes-json-schema/v{supported[-1]}-local-strict"
    return Resource.from_contents(
        kv_utils.schema_contents(f"{schema_dir}/_definitions.json", version)
    )


def _ray_validators(version: str) -> dict[str, jsonschema.protocols.Validator]:
    registry: Registry = _k8s_definitions(version) @ Registry()
    registry = (
        Resource.from_contents(json.loads((SCHEMAS / "_definitions.json").read_text())) @ registry
    )
    validators = {}
    for kind in RAY_KINDS:
        schema = json.loads((SCHEMAS / f"{kind.lower()}-ray-v1.json").read_text())
        validators[kind] = jsonschema.Draft202012Validator(schema, registry=registry)
    return validators


def _pod_specs(doc: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every pod spec (a mapping with a `containers` list) anywhere in a resource."""
    if isinstance(doc, dict):
        if isinstance(doc.get("containers"), list):
            yield path, doc
        for key, value in doc.items():
            yield from _pod_specs(value, f"{path}.{key}")
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            yield from _pod_specs(value, f"{path}[{index}]")


def _rules(doc: dict[str, Any]) -> list[str]:
    problems = []
    for where, pod in _pod_specs(doc.get("spec", {}), "spec"):
        if not (pod.get("securityContext") or {}).get("runAsNonRoot"):
            problems.append(f"{where}: securityContext.runAsNonRoot is not true")
        shm_volumes = {
            v["name"]
            for v in pod.get("volumes", [])
            if (v.get("emptyDir") or {}).get("medium") == "Memory"
            and (v.get("emptyDir") or {}).get("sizeLimit")
        }
        for container in pod["containers"]:
            name = f"{where}.containers[{container.get('name')}]"
            resources = container.get("resources") or {}
            limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
            for key in sorted(set(limits) | set(requests)):
                if key.endswith("/gpu") and str(limits.get(key)) != str(requests.get(key)):
                    problems.append(
                        f"{name}: {key} limit {limits.get(key)!r} != request {requests.get(key)!r}"
                    )
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            if mounts.get("/dev/shm") not in shm_volumes:
                problems.append(
                    f"{name}: /dev/shm is not a memory-backed emptyDir with a sizeLimit "
                    "(Ray's object store needs it)"
                )
    return problems


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help="YAML files, or - for stdin")
    parser.add_argument("--kubernetes-version", default="1.32")
    parser.add_argument("--label", default=None, help="name the input in messages")
    args = parser.parse_args(argv)

    ray = _ray_validators(args.kubernetes_version)
    failures = checked = 0
    for file in args.files:
        text = sys.stdin.read() if file == "-" else Path(file).read_text()
        source = args.label or ("<stdin>" if file == "-" else file)
        for doc in yaml.safe_load_all(text):
            if not doc:
                continue
            kind, name = doc.get("kind", "?"), (doc.get("metadata") or {}).get("name", "?")
            where = f"{source}: {kind}/{name}"
            problems: list[str] = []
            try:
                if kind in RAY_KINDS and doc.get("apiVersion") == "ray.io/v1":
                    problems += [
                        f"{'.'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
                        for e in ray[kind].iter_errors(doc)
                    ]
                else:
                    kubernetes_validate.validate(doc, args.kubernetes_version, strict=True)
            except kubernetes_validate.ValidationError as error:
                problems.append(f"{'.'.join(map(str, error.absolute_path))}: {error.message}")
            except kubernetes_validate.SchemaNotFoundError as error:
                problems.append(error.message)
            if kind in RAY_KINDS or kind in {"CronJob", "Job"}:
                problems += _rules(doc)
            checked += 1
            for problem in problems:
                print(f"FAIL {where}: {problem}")
            failures += bool(problems)
            if not problems:
                print(f"ok   {where}")
    if not checked:
        print("validate-k8s: no resources found", file=sys.stderr)
        return 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
