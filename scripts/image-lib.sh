# shellcheck shell=bash
# Shared by scripts/image-test.sh (Dockerfile.cpu) and scripts/image-test-cuda.sh (Dockerfile.cuda):
# build an image with buildah (no Docker engine, no registry) and run commands in it.
# Source it after `cd` to the repository root; it defines functions and sets nothing else.
#
#   image_init ROOT      root check, buildah/debootstrap/crun (apt) when missing, storage driver
#                        (overlay if root may mount it here, else vfs): sets STORE, DRIVER, WORK
#   image_base NAME SUITE MIRROR INCLUDE SCRIPT [debootstrap options...]
#                        a minbase rootfs made with debootstrap, imported as NAME (cached);
#                        SCRIPT: debootstrap's suite script, "" for SUITE's own;
#                        BASE_SOURCES, when set, replaces the rootfs's /etc/apt/sources.list
#   image_build DOCKERFILE IMAGE [buildah bud options...]
#   image_id IMAGE       the image id (sha256:...)
#   image_size IMAGE     buildah's size of it
#   image_from IMAGE     a working container of it: sets CTR (removed on exit)
#   in_image ...         run a command in CTR as the image's user (uid 10001), /out mounted
#   in_image_root ...    the same as root (test-only installs into the working container)

say() { printf '\n== %s\n' "$*"; }
die() { printf '%s: %s\n' "${0##*/}" "$*" >&2; exit 1; }
now() { date +%s; }

# shellcheck disable=SC2034  # used by the scripts that source this file
HOST_CA=${QT_HOST_CA:-/etc/ssl/certs/ca-certificates.crt}
CTR=""
WORK=""
STORE=()
DRIVER=""

_image_cleanup() {
    if [ -n "$CTR" ]; then buildah "${STORE[@]}" rm "$CTR" >/dev/null 2>&1 || true; fi
    if [ -n "$WORK" ]; then rm -rf "$WORK"; fi
}

image_init() {
    local root=$1 tool probe
    [ "$(id -u)" -eq 0 ] || die "run as root (debootstrap and chroot builds need it)"
    WORK=$(mktemp -d /var/tmp/quantrain-image-test.XXXXXX)
    trap _image_cleanup EXIT
    local missing=()
    for tool in buildah debootstrap crun gpgv; do
        command -v "$tool" >/dev/null || missing+=("$tool")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing buildah debootstrap crun gpgv (apt; missing: ${missing[*]})"
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            buildah debootstrap crun gpgv
    fi
    buildah --version
    mkdir -p "$root"
    DRIVER=${QT_STORAGE_DRIVER:-}
    if [ -z "$DRIVER" ]; then
        # overlay if this kernel lets root mount it (not inside every container), else vfs.
        probe="$WORK/overlay-probe"
        mkdir -p "$probe"/{lower,upper,work,merged}
        if mount -t overlay overlay \
            -o "lowerdir=$probe/lower,upperdir=$probe/upper,workdir=$probe/work" \
            "$probe/merged" 2>/dev/null; then
            umount "$probe/merged"
            DRIVER=overlay
        else
            DRIVER=vfs
        fi
    fi
    STORE=(--root "$root/storage-$DRIVER" --runroot "$root/run-$DRIVER" --storage-driver "$DRIVER")
    say "container storage: $DRIVER under $root ($(df -h --output=avail "$root" | tail -n 1 | tr -d ' ') free)"
}

image_base() {
    local name=$1 suite=$2 mirror=$3 include=$4 script=$5
    shift 5
    if buildah "${STORE[@]}" inspect --type image "$name" >/dev/null 2>&1; then
        say "base image $name: cached"
        return
    fi
    say "base image $name: debootstrap $suite from $mirror"
    debootstrap --variant=minbase --include="$include" "$@" \
        "$suite" "$WORK/rootfs" "$mirror" ${script:+"$script"} >"$WORK/debootstrap.log" 2>&1 \
        || { tail -n 30 "$WORK/debootstrap.log"; die "debootstrap $suite failed"; }
    chroot "$WORK/rootfs" apt-get clean
    if [ -n "${BASE_SOURCES:-}" ]; then printf '%s\n' "$BASE_SOURCES" >"$WORK/rootfs/etc/apt/sources.list"; fi
    rm -rf "$WORK/rootfs/var/lib/apt/lists/"*
    tar -C "$WORK/rootfs" -cf "$WORK/rootfs.tar" .
    rm -rf "$WORK/rootfs"
    CTR=$(buildah "${STORE[@]}" from scratch)
    buildah "${STORE[@]}" add "$CTR" "$WORK/rootfs.tar" /
    buildah "${STORE[@]}" config --env LANG=C.UTF-8 \
        --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --cmd /bin/bash "$CTR"
    buildah "${STORE[@]}" commit --quiet "$CTR" "$name" >/dev/null
    buildah "${STORE[@]}" rm "$CTR" >/dev/null
    CTR=""
    rm -f "$WORK/rootfs.tar"
}

image_build() {
    local dockerfile=$1 image=$2
    shift 2
    say "buildah bud -f $dockerfile -> $image"
    local rc=0
    buildah "${STORE[@]}" bud --isolation chroot --layers --format docker "$@" \
        -f "$dockerfile" -t "$image" . 2>&1 \
        | tee "$WORK/build.log" \
        | { grep --line-buffered -E 'STEP|COMMIT|Successfully|rror' || true; } || rc=$?
    [ "$rc" -eq 0 ] || { tail -n 40 "$WORK/build.log"; die "image build failed ($rc)"; }
}

image_id() { buildah "${STORE[@]}" images --no-trunc --format '{{.ID}}' "$1" | head -n 1; }
image_size() { buildah "${STORE[@]}" images --format '{{.Size}}' "$1" | head -n 1; }

image_from() {
    mkdir -p "$WORK/out" && chmod 0777 "$WORK/out"
    CTR=$(buildah "${STORE[@]}" from --quiet "$1")
}

# ENTRYPOINT is quantrain; buildah run takes the command explicitly. COLUMNS: rich's tables
# are 80 columns wide without a terminal, too narrow for the run summary.
in_image() {
    buildah "${STORE[@]}" run --isolation chroot --user 10001:10001 \
        -v "$WORK/out:/out" "${QT_RUN_VOLUMES[@]}" --workingdir /app "$CTR" \
        -- env COLUMNS=170 "$@"
}
in_image_root() {
    buildah "${STORE[@]}" run --isolation chroot --user 0:0 \
        -v "$WORK/out:/out" "${QT_RUN_VOLUMES[@]}" --workingdir /app "$CTR" -- "$@"
}
QT_RUN_VOLUMES=()
