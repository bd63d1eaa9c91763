#!/usr/bin/env bash
# Build Dockerfile.cuda without a Docker engine, a GPU or a registry, and check the image:
# torch is a CUDA build, XGBoost was built with CUDA, and with no device present `quantrain
# doctor` says each family falls back to CPU, and a one-pair job trains on CPU.
#
#   sudo scripts/image-test-cuda.sh       # or: make image-test-cuda (not in .ci/run: see README)
#
# Base: nvidia/cuda:*-ubuntu24.04 cannot be pulled here, so an Ubuntu 24.04 (noble) minbase is
# made with debootstrap from an Ubuntu mirror and passed as BASE_IMAGE. That is all the CUDA
# base adds for this image anyway: the torch and XGBoost wheels bring their own CUDA runtime
# libraries as nvidia-* wheels; the host's driver (libcuda) comes in through the NVIDIA
# container toolkit. Debian's debootstrap may not know "noble", so the script uses its gutsy
# script (all Ubuntu releases since share it) and checks the mirror's signature against the
# Ubuntu archive key pinned below (taken from the mirror's ubuntu-keyring package, kept only if
# it is that key).
#
# torch: the Dockerfile's default index (download.pytorch.org/whl/cu128, with xgboost-cu12) when
# it is reachable; otherwise PyPI, whose plain torch Linux x86_64 wheel is the CUDA 13 build,
# with the plain xgboost wheel (also CUDA 13) so that the image has one CUDA major version
# (hosts need a driver >= 580 for that variant). The host's local wheel directory (a CPU torch)
# is never mounted here, and the Dockerfile refuses a torch without CUDA.
#
# Settings (environment): QT_IMAGE_ROOT (default /var/tmp/quantrain-images-cuda, apart from the
# CPU image's layer cache because the cleanup prunes), QT_STORAGE_DRIVER, QT_UBUNTU_MIRROR
# (default http://archive.ubuntu.com/ubuntu), QT_TORCH_INDEX_URL and QT_XGBOOST_DIST (override
# the choice above), QT_KEEP=1 (keep the image and its layer cache: a warm rebuild; default:
# remove them, keeping only the small base image), QT_MIN_FREE_GB (default 45; 120 with vfs).
# Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/image-lib.sh
. scripts/image-lib.sh

ROOT=${QT_IMAGE_ROOT:-/var/tmp/quantrain-images-cuda}
MIRROR=${QT_UBUNTU_MIRROR:-http://archive.ubuntu.com/ubuntu}
BASE=localhost/quantrain-base:noble
IMAGE=localhost/quantrain-cuda:test
# Ubuntu Archive Automatic Signing Key (2018) <ftpmaster@ubuntu.com>: signs noble's Release.
UBUNTU_ARCHIVE_KEY=F6ECB3762474EDA9D21B7022871920D1991BC93C

T0=$(now)
image_init "$ROOT"
# Disk: the build holds the ~6 GB venv several times over (the builder's layer, the runtime's
# copy, each container's upper directory and the commit's temporary blobs): about 37 GB at the
# peak with overlay here. Stop early rather than fill the disk; vfs needs several times more.
need_gb=${QT_MIN_FREE_GB:-45}
[ "$DRIVER" = vfs ] && need_gb=${QT_MIN_FREE_GB:-120}
free_gb=$(($(df --output=avail -k "$ROOT" | tail -n 1) / 1024 / 1024))
[ "$free_gb" -ge "$need_gb" ] \
    || die "$free_gb GB free under $ROOT, the CUDA build needs ~$need_gb GB with $DRIVER (QT_MIN_FREE_GB)"
used_kb() { df --output=used -k "$ROOT" | tail -n 1; }
USED0=$(used_kb)
# The peak of the disk's use, sampled every 5 s until $WORK goes away (on exit).
(while [ -d "$WORK" ]; do used_kb >>"$WORK/disk.log" 2>/dev/null || true; sleep 5; done) &
T_TOOLS=$(now)

# ---- base image: Ubuntu 24.04 minbase (the Dockerfile installs python3 itself) --------------
T_BASE0=$(now)
if ! buildah "${STORE[@]}" inspect --type image "$BASE" >/dev/null 2>&1; then
    say "Ubuntu archive key $UBUNTU_ARCHIVE_KEY from $MIRROR's ubuntu-keyring"
    deb=$(curl -fsS "$MIRROR/dists/noble/main/binary-amd64/Packages.gz" | gunzip \
        | awk '/^Package: ubuntu-keyring$/ {p = 1} p && !f && /^Filename:/ {print $2; f = 1}')
    [ -n "$deb" ] || die "no ubuntu-keyring in $MIRROR's noble/main"
    curl -fsS -o "$WORK/keyring.deb" "$MIRROR/$deb"
    dpkg-deb -x "$WORK/keyring.deb" "$WORK/keyring"
    mkdir -m 0700 "$WORK/gnupg"
    gpg --homedir "$WORK/gnupg" --quiet --import \
        "$WORK/keyring/usr/share/keyrings/ubuntu-archive-keyring.gpg" 2>/dev/null
    gpg --homedir "$WORK/gnupg" --export "$UBUNTU_ARCHIVE_KEY" >"$WORK/ubuntu-archive.gpg"
    [ -s "$WORK/ubuntu-archive.gpg" ] || die "the keyring does not hold $UBUNTU_ARCHIVE_KEY"
    script=/usr/share/debootstrap/scripts/noble
    [ -e "$script" ] || script=/usr/share/debootstrap/scripts/gutsy
fi
# The components and pockets of the official ubuntu:24.04 image (python3-venv is in universe).
BASE_SOURCES=$(for pocket in noble noble-updates noble-security; do
    echo "deb $MIRROR $pocket main restricted universe multiverse"; done)
image_base "$BASE" noble "$MIRROR" ca-certificates "${script:-}" \
    --keyring="$WORK/ubuntu-archive.gpg" --components=main,restricted,universe,multiverse
T_BASE=$(now)

# ---- build Dockerfile.cuda -------------------------------------------------------------------
torch_index=${QT_TORCH_INDEX_URL:-}
xgboost_dist=${QT_XGBOOST_DIST:-}
if [ -z "$torch_index" ]; then
    if curl -fsS -o /dev/null --max-time 20 https://download.pytorch.org/whl/cu128/torch/; then
        torch_index=https://download.pytorch.org/whl/cu128
    else
        say "download.pytorch.org unreachable: torch from PyPI (its CUDA 13 build), xgboost (CUDA 13)"
        torch_index=https://pypi.org/simple
        xgboost_dist=${xgboost_dist:-xgboost}
    fi
fi
build_args=(--build-arg "BASE_IMAGE=$BASE" --build-arg "TORCH_INDEX_URL=$torch_index")
[ -n "$xgboost_dist" ] && build_args+=(--build-arg "XGBOOST_DIST=$xgboost_dist")
if [ -f "$HOST_CA" ]; then
    build_args+=(-v "$HOST_CA:/host-ca.crt:ro" --build-arg PIP_CERT=/host-ca.crt)
fi
image_build Dockerfile.cuda "$IMAGE" "${build_args[@]}"
T_BUILD=$(now)
ID=$(image_id "$IMAGE")
size=$(image_size "$IMAGE")
say "image $IMAGE: id $ID, $size"

# ---- check it --------------------------------------------------------------------------------
image_from "$IMAGE"
say "CUDA builds in the image (no GPU on this machine)"
in_image python -c '
import ccxt, torch, xgboost
info = xgboost.build_info()
print("torch", torch.__version__, "CUDA build:", torch.version.cuda,
      "cuda available:", torch.cuda.is_available())
print("xgboost", xgboost.__version__, "USE_CUDA:", info.get("USE_CUDA"),
      "CUDA_VERSION:", info.get("CUDA_VERSION"))
print("ccxt", ccxt.__version__)
assert torch.version.cuda, "torch is not a CUDA build"
assert "+cpu" not in torch.__version__, "the CPU torch wheel got in"
assert info.get("USE_CUDA"), "xgboost was built without CUDA"
'
say "quantrain doctor (in image $ID)"
in_image quantrain doctor 2>"$WORK/doctor.err" | tee "$WORK/doctor.txt"
if [ -s "$WORK/doctor.err" ]; then echo "(doctor's stderr:)"; cat "$WORK/doctor.err"; fi
grep -q "^CUDA GPUs: none found" "$WORK/doctor.txt" || die "doctor: expected no CUDA GPU"
grep -q "^xgboost CUDA build: yes; device auto -> cpu" "$WORK/doctor.txt" \
    || die "doctor: expected 'xgboost CUDA build: yes; device auto -> cpu'"
grep -Eq "^torch [^ ]+: no GPU visible; .*device auto -> cpu" "$WORK/doctor.txt" \
    || die "doctor: expected 'torch ...: no GPU visible; ... device auto -> cpu'"
T_DOCTOR=$(now)

say "quantrain run jobs/single-symbol.yaml on CPU (store /out/models)"
in_image quantrain run jobs/single-symbol.yaml --set store=/out/models
in_image quantrain models verify --store /out/models
T_RUN=$(now)

say "what the image holds"
# shellcheck disable=SC2016  # expanded inside the container
in_image bash -c 'du -sh /opt/venv; du -s /opt/venv/lib/python3*/site-packages/* | sort -n | tail -n 8 \
    | awk "{printf \"  %6.0f MB  %s\n\", \$1 / 1024, \$2}"'
storage=$(du -sh "$ROOT" 2>/dev/null | cut -f1)
peak_gb=$(sort -n "$WORK/disk.log" | tail -n 1 | awk -v u0="$USED0" '{printf "%.1f", ($1 - u0) / 1048576}')

if [ "${QT_KEEP:-0}" = 0 ]; then
    say "QT_KEEP=0: removing the image and its layer cache (the base image stays)"
    buildah "${STORE[@]}" rm "$CTR" >/dev/null; CTR=""
    buildah "${STORE[@]}" rmi --force "$IMAGE" >/dev/null
    buildah "${STORE[@]}" rmi --prune >/dev/null || true
fi

cat <<EOF

image-test-cuda passed: $IMAGE ($size), torch from $torch_index, ${xgboost_dist:-xgboost-cu12}
  image id      $ID
  tools         $((T_TOOLS - T0)) s
  base image    $((T_BASE - T_BASE0)) s
  build         $((T_BUILD - T_BASE)) s
  checks        $((T_DOCTOR - T_BUILD)) s
  train 1 pair  $((T_RUN - T_DOCTOR)) s (CPU fallback)
  total         $((T_RUN - T0)) s
  disk          +$peak_gb GB at the peak (df); $storage under $ROOT ($DRIVER) after the build,
                $(du -sh "$ROOT" 2>/dev/null | cut -f1) after the cleanup
EOF
