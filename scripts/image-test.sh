#!/usr/bin/env bash
# Build Dockerfile.cpu without a Docker engine and prove the image works: `quantrain doctor`,
# one symbol trained end to end into a store outside the container, `quantrain models verify`.
#
#   sudo scripts/image-test.sh            # or: make image-test
#
# How: buildah (chroot isolation: no daemon, no user namespaces; overlay storage when the
# kernel lets root mount overlayfs, else vfs, which copies every layer and needs far more disk)
# builds on a Debian bookworm base made here with debootstrap (python3 = 3.11), imported
# as localhost/quantrain-base:bookworm, so no registry beyond Debian's mirror and PyPI is needed.
# The image then runs under buildah as well (chroot isolation, host network).
#
# This machine's specifics stay here, not in the Dockerfile:
#   - the host CA bundle is mounted for pip (PIP_CERT), for networks that intercept TLS;
#   - a local wheel directory (default: pip's configured find-links, e.g. /opt/wheels) holding
#     the torch CPU wheel is mounted and used instead of download.pytorch.org, which may be
#     unreachable. Without one, the Dockerfile's default (download.pytorch.org/whl/cpu) is used.
#
# Settings (environment): QT_IMAGE_ROOT (container storage, default /var/tmp/quantrain-images:
# kept between runs so the second run is warm), QT_STORAGE_DRIVER (overlay|vfs; default: overlay
# if it mounts), QT_WHEELS_DIR, QT_DEBIAN_MIRROR,
# QT_FRESH=1 (drop the base image and the layer cache first: a cold run), QT_KEEP=0 (delete the
# built image afterwards). Needs root. Exit status non-zero if any step fails.
set -euo pipefail
cd "$(dirname "$0")/.."

ROOT=${QT_IMAGE_ROOT:-/var/tmp/quantrain-images}
MIRROR=${QT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
BASE=localhost/quantrain-base:bookworm
IMAGE=localhost/quantrain-cpu:test
HOST_CA=${QT_HOST_CA:-/etc/ssl/certs/ca-certificates.crt}
WORK=$(mktemp -d /var/tmp/quantrain-image-test.XXXXXX)
CTR=""

say() { printf '\n== %s\n' "$*"; }
die() { printf 'image-test: %s\n' "$*" >&2; exit 1; }
now() { date +%s; }
cleanup() {
    if [ -n "$CTR" ]; then buildah "${STORE[@]}" rm "$CTR" >/dev/null 2>&1 || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap and chroot builds need it)"

T0=$(now)
missing=()
for tool in buildah debootstrap; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]} (apt)"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        buildah debootstrap crun
fi
mkdir -p "$ROOT"
driver=${QT_STORAGE_DRIVER:-}
if [ -z "$driver" ]; then
    # overlay if this kernel lets root mount it (not inside every container), else vfs.
    probe="$WORK/overlay-probe"
    mkdir -p "$probe"/{lower,upper,work,merged}
    if mount -t overlay overlay -o "lowerdir=$probe/lower,upperdir=$probe/upper,workdir=$probe/work" \
        "$probe/merged" 2>/dev/null; then
        umount "$probe/merged"
        driver=overlay
    else
        driver=vfs
    fi
fi
STORE=(--root "$ROOT/storage-$driver" --runroot "$ROOT/run-$driver" --storage-driver "$driver")
say "container storage: $driver under $ROOT"
T_TOOLS=$(now)

if [ "${QT_FRESH:-0}" = 1 ]; then
    say "QT_FRESH=1: removing cached images and layers under $ROOT"
    buildah "${STORE[@]}" rm --all >/dev/null 2>&1 || true
    buildah "${STORE[@]}" rmi --all --force >/dev/null 2>&1 || true
fi

# ---- base image: Debian bookworm (minbase) + python3 3.11 + venv ---------------------------
T_BASE0=$(now)
if buildah "${STORE[@]}" inspect --type image "$BASE" >/dev/null 2>&1; then
    say "base image $BASE: cached"
else
    say "base image $BASE: debootstrap bookworm from $MIRROR"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm "$WORK/rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
        || { tail -n 30 "$WORK/debootstrap.log"; die "debootstrap failed"; }
    chroot "$WORK/rootfs" apt-get clean
    rm -rf "$WORK/rootfs/var/lib/apt/lists/"*
    tar -C "$WORK/rootfs" -cf "$WORK/rootfs.tar" .
    rm -rf "$WORK/rootfs"
    CTR=$(buildah "${STORE[@]}" from scratch)
    buildah "${STORE[@]}" add "$CTR" "$WORK/rootfs.tar" /
    buildah "${STORE[@]}" config --env LANG=C.UTF-8 \
        --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --cmd /bin/bash "$CTR"
    buildah "${STORE[@]}" commit --quiet "$CTR" "$BASE" >/dev/null
    buildah "${STORE[@]}" rm "$CTR" >/dev/null
    CTR=""
    rm -f "$WORK/rootfs.tar"
fi
T_BASE=$(now)

# ---- build Dockerfile.cpu --------------------------------------------------------------------
wheels=${QT_WHEELS_DIR:-$(pip config get global.find-links 2>/dev/null || true)}
build_args=(--build-arg "BASE_IMAGE=$BASE")
volumes=()
if [ -f "$HOST_CA" ]; then
    volumes+=(-v "$HOST_CA:/host-ca.crt:ro")
    build_args+=(--build-arg PIP_CERT=/host-ca.crt)
fi
if [ -n "$wheels" ] && compgen -G "$wheels/torch-*+cpu-*.whl" >/dev/null; then
    say "torch CPU wheel from $wheels (mounted at /wheels)"
    volumes+=(-v "$wheels:/wheels:ro")
    build_args+=(--build-arg PIP_FIND_LINKS=/wheels
                 --build-arg TORCH_INDEX_URL=https://pypi.org/simple)
fi
say "buildah bud -f Dockerfile.cpu -> $IMAGE"
buildah "${STORE[@]}" bud --isolation chroot --layers --format docker \
    "${build_args[@]}" "${volumes[@]}" -f Dockerfile.cpu -t "$IMAGE" . 2>&1 \
    | tee "$WORK/build.log" | grep --line-buffered -E 'STEP|COMMIT|Successfully|rror' || true
[ "${PIPESTATUS[0]}" -eq 0 ] || { tail -n 40 "$WORK/build.log"; die "image build failed"; }
T_BUILD=$(now)
size=$(buildah "${STORE[@]}" images --format '{{.Size}}' "$IMAGE" | head -n 1)

# ---- run it ----------------------------------------------------------------------------------
# The container runs as uid 10001 (the image's USER); it writes its store to $WORK/out.
mkdir -p "$WORK/out" && chmod 0777 "$WORK/out"
CTR=$(buildah "${STORE[@]}" from --quiet "$IMAGE")
in_image() {
    # ENTRYPOINT is quantrain; buildah run takes the command explicitly.
    buildah "${STORE[@]}" run --isolation chroot --user 10001:10001 \
        -v "$WORK/out:/out" --workingdir /app "$CTR" -- "$@"
}

say "quantrain doctor"
in_image quantrain doctor | tee "$WORK/doctor.txt"
grep -q "device auto -> cpu" "$WORK/doctor.txt" || die "doctor: expected 'device auto -> cpu'"
grep -Eq "^torch [0-9.]+\+cpu" "$WORK/doctor.txt" || die "doctor: expected a torch +cpu build"
T_DOCTOR=$(now)

say "quantrain run jobs/single-symbol.yaml (store /out/models)"
in_image quantrain run jobs/single-symbol.yaml --set store=/out/models
T_RUN=$(now)

say "quantrain models verify"
in_image quantrain models verify --store /out/models
in_image quantrain models list --store /out/models
ls "$WORK"/out/models/*/*/*/manifest.json >/dev/null || die "no package manifest on the host side"
T_VERIFY=$(now)

say "as the default user, with the image's entrypoint and cmd"
in_image bash -c 'id -u && quantrain --help >/dev/null && echo "entrypoint ok"'

if [ "${QT_KEEP:-1}" = 0 ]; then
    buildah "${STORE[@]}" rm "$CTR" >/dev/null; CTR=""
    buildah "${STORE[@]}" rmi "$IMAGE" >/dev/null
fi

cat <<EOF

image-test passed: $IMAGE ($size)
  tools        $((T_TOOLS - T0)) s
  base image   $((T_BASE - T_BASE0)) s
  build        $((T_BUILD - T_BASE)) s
  doctor       $((T_DOCTOR - T_BUILD)) s
  train 1 pair $((T_RUN - T_DOCTOR)) s
  verify       $((T_VERIFY - T_RUN)) s
  total        $((T_VERIFY - T0)) s
  storage      $(du -sh "$ROOT" 2>/dev/null | cut -f1) under $ROOT ($driver)
EOF
