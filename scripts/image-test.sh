#!/usr/bin/env bash
# Build Dockerfile.cpu without a Docker engine and prove the image works: `quantrain doctor`,
# two symbols trained end to end into a store outside the container, `quantrain models verify`,
# then a smoke subset of the test suite run against the wheel installed in the image.
#
#   sudo scripts/image-test.sh            # or: make image-test; .ci/run runs it after make test
#
# How (shared with image-test-cuda.sh, see scripts/image-lib.sh): buildah (chroot isolation: no
# daemon, no user namespaces; overlay storage when the kernel lets root mount overlayfs, else
# vfs, which copies every layer and needs far more disk) builds on a Debian bookworm base made
# here with debootstrap (python3 = 3.11), imported as localhost/quantrain-base:bookworm, so no
# registry beyond Debian's mirror and PyPI is needed. The image then runs under buildah as well
# (chroot isolation, host network).
#
# This machine's specifics stay here, not in the Dockerfile:
#   - the host CA bundle is mounted for pip (PIP_CERT), for networks that intercept TLS;
#   - a local wheel directory (default: pip's configured find-links, e.g. /opt/wheels) holding
#     the torch CPU wheel is mounted and used instead of download.pytorch.org, which may be
#     unreachable. Without one, the Dockerfile's default (download.pytorch.org/whl/cpu) is used,
#     and the script stops at once if that index cannot be reached.
#
# The smoke tests (QT_SMOKE_TESTS, default tests/integration/test_cli.py and test_package.py)
# run from a copy of tests/ and pyproject.toml (no src/) mounted at /smoke, after pytest,
# hypothesis and moto (pyproject's dev pins) are installed into the working container only:
# the image itself never holds test dependencies. `import quantrain` must resolve to
# /opt/venv's site-packages, and the script prints quantrain.__file__ to show it.
#
# Settings (environment): QT_IMAGE_ROOT (container storage, default /var/tmp/quantrain-images:
# kept between runs so the second run is warm), QT_STORAGE_DRIVER (overlay|vfs; default: overlay
# if it mounts), QT_WHEELS_DIR, QT_DEBIAN_MIRROR, QT_SMOKE_TESTS (pytest arguments; "none"
# skips them), QT_FRESH=1 (drop the base image and the layer cache first: a cold run),
# QT_KEEP=0 (delete the built image afterwards). Needs root. Exit status non-zero if any step
# fails.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/image-lib.sh
. scripts/image-lib.sh

ROOT=${QT_IMAGE_ROOT:-/var/tmp/quantrain-images}
MIRROR=${QT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
BASE=localhost/quantrain-base:bookworm
IMAGE=localhost/quantrain-cpu:test
SMOKE=${QT_SMOKE_TESTS:-tests/integration/test_cli.py tests/integration/test_package.py}

T0=$(now)
image_init "$ROOT"
T_TOOLS=$(now)

if [ "${QT_FRESH:-0}" = 1 ]; then
    say "QT_FRESH=1: removing cached images and layers under $ROOT"
    buildah "${STORE[@]}" rm --all >/dev/null 2>&1 || true
    buildah "${STORE[@]}" rmi --all --force >/dev/null 2>&1 || true
fi

# ---- base image: Debian bookworm (minbase) + python3 3.11 + venv ---------------------------
T_BASE0=$(now)
image_base "$BASE" bookworm "$MIRROR" python3,python3-venv,ca-certificates ""
T_BASE=$(now)

# ---- build Dockerfile.cpu --------------------------------------------------------------------
wheels=${QT_WHEELS_DIR:-$(pip config get global.find-links 2>/dev/null || true)}
build_args=(--build-arg "BASE_IMAGE=$BASE")
if [ -f "$HOST_CA" ]; then
    build_args+=(-v "$HOST_CA:/host-ca.crt:ro" --build-arg PIP_CERT=/host-ca.crt)
    QT_RUN_VOLUMES=(-v "$HOST_CA:/host-ca.crt:ro")
fi
if [ -n "$wheels" ] && compgen -G "$wheels/torch-*+cpu-*.whl" >/dev/null; then
    say "torch CPU wheel from $wheels (mounted at /wheels)"
    build_args+=(-v "$wheels:/wheels:ro" --build-arg PIP_FIND_LINKS=/wheels
                 --build-arg TORCH_INDEX_URL=https://pypi.org/simple)
else
    index=https://download.pytorch.org/whl/cpu/
    curl -fsS -o /dev/null --max-time 30 "$index" \
        || die "no local torch CPU wheel (QT_WHEELS_DIR) and $index is unreachable"
fi
image_build Dockerfile.cpu "$IMAGE" "${build_args[@]}"
T_BUILD=$(now)
ID=$(image_id "$IMAGE")
size=$(image_size "$IMAGE")
say "image $IMAGE: id $ID, $size"

# ---- run it ----------------------------------------------------------------------------------
# The container runs as uid 10001 (the image's USER); it writes its store to $WORK/out.
image_from "$IMAGE"

say "quantrain doctor (in image $ID)"
in_image quantrain doctor | tee "$WORK/doctor.txt"
grep -q "device auto -> cpu" "$WORK/doctor.txt" || die "doctor: expected 'device auto -> cpu'"
grep -Eq "^torch [0-9.]+\+cpu" "$WORK/doctor.txt" || die "doctor: expected a torch +cpu build"
in_image python -c 'import ccxt; print("ccxt", ccxt.__version__, "(the exchange extra)")'
T_DOCTOR=$(now)

say "quantrain run: two pairs, ETH-BTC and LTC-BTC (store /out/models, on the host)"
in_image quantrain run jobs/single-symbol.yaml --set name=image-two-pairs \
    --set 'data.symbols=[ETH-BTC, LTC-BTC]' --set ray.num_cpus_per_symbol=1 \
    --set store=/out/models | tee "$WORK/run.txt"
grep -q "run summary" "$WORK/run.txt" || die "run: no summary table"
T_RUN=$(now)

say "quantrain models verify"
in_image quantrain models verify --store /out/models | tee "$WORK/verify.txt"
grep -q "2 of 2 packages verified" "$WORK/verify.txt" || die "verify: expected 2 of 2 packages"
in_image quantrain models list --store /out/models
for pair in ETH-BTC LTC-BTC; do
    ls "$WORK"/out/models/"$pair"/*/*/manifest.json >/dev/null \
        || die "no $pair package manifest on the host side"
done
T_VERIFY=$(now)

say "as the default user, with the image's entrypoint and cmd"
in_image bash -c 'id -u && quantrain --help >/dev/null && echo "entrypoint ok"'

# ---- smoke tests against the installed wheel -------------------------------------------------
T_SMOKE0=$(now)
smoke_summary="skipped (QT_SMOKE_TESTS=none)"
if [ "$SMOKE" != none ]; then
    say "smoke tests in the image: pytest $SMOKE (tests/ without src/, at /smoke)"
    mkdir -p "$WORK/smoke"
    cp -r tests pyproject.toml scripts/pyproject-deps.py "$WORK/smoke/"
    find "$WORK/smoke" -name __pycache__ -prune -exec rm -rf {} +
    chmod -R a+rwX "$WORK/smoke"
    QT_RUN_VOLUMES+=(-v "$WORK/smoke:/smoke")
    # Test dependencies into this working container only, with what the image holds pinned.
    pip_cert=()
    [ -f "$HOST_CA" ] && pip_cert=(--cert /host-ca.crt)
    in_image_root bash -o pipefail -c '
        python3 /smoke/pyproject-deps.py /smoke/pyproject.toml --extra dev \
            --only pytest --only hypothesis --only moto > /tmp/test-requirements.txt
        pip freeze --exclude quantrain > /tmp/image-pins.txt
        pip install --quiet --no-cache-dir --disable-pip-version-check "$@" \
            -c /tmp/image-pins.txt -r /tmp/test-requirements.txt' bash "${pip_cert[@]}"
    where=$(in_image bash -c 'cd /smoke && python -c "import quantrain; print(quantrain.__file__)"')
    echo "quantrain.__file__ = $where"
    case $where in
        /opt/venv/lib/python3*/site-packages/quantrain/__init__.py) ;;
        *) die "smoke tests would not test the installed wheel: quantrain is $where" ;;
    esac
    # shellcheck disable=SC2086  # SMOKE is a list of pytest arguments
    in_image bash -c 'cd /smoke && exec python -m pytest -p no:cacheprovider -q -m "not gpu" "$@"' \
        bash $SMOKE | tee "$WORK/smoke.txt"
    smoke_summary=$(grep -E '^[0-9]+ passed' "$WORK/smoke.txt" | tail -n 1)
    [ -n "$smoke_summary" ] || die "smoke tests: no pytest summary"
fi
T_SMOKE=$(now)

if [ "${QT_KEEP:-1}" = 0 ]; then
    buildah "${STORE[@]}" rm "$CTR" >/dev/null; CTR=""
    buildah "${STORE[@]}" rmi "$IMAGE" >/dev/null
fi

cat <<EOF

image-test passed: $IMAGE ($size)
  image id      $ID
  tools         $((T_TOOLS - T0)) s
  base image    $((T_BASE - T_BASE0)) s
  build         $((T_BUILD - T_BASE)) s
  doctor        $((T_DOCTOR - T_BUILD)) s
  train 2 pairs $((T_RUN - T_DOCTOR)) s
  verify        $((T_VERIFY - T_RUN)) s
  smoke tests   $((T_SMOKE - T_SMOKE0)) s: $smoke_summary
  total         $((T_SMOKE - T0)) s
  storage       $(du -sh "$ROOT" 2>/dev/null | cut -f1) under $ROOT ($DRIVER)
EOF
