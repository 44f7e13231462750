#!/usr/bin/env bash
# `make docker-test`: build the image with podman and smoke-test it: `mmfs demo` inside the container
# (no network, read-only root filesystem), then `mmfs status` on the store it wrote, checked here.
#
# The base is $BASE when set; else python:3.11-slim when a registry answers; else a Debian 12 base
# made here with debootstrap (needs root) and imported as localhost/debian:bookworm. Skips (exit 0)
# with its reason where podman is absent. Prints the build time and the image size.
# DOCKER_TEST_BUILD=0 smoke-tests the image already built (tagged $IMAGE) without building it again.
set -euo pipefail

IMAGE=${IMAGE:-localhost/mmfs:test}
LOCAL_BASE=localhost/debian:bookworm
cd "$(dirname "$0")/.."

if ! command -v podman >/dev/null 2>&1; then
    echo "docker-test skipped: podman is absent (Debian: apt-get install podman runc debootstrap)"
    exit 0
fi
# crun fails on hybrid-cgroup kernels; runc works where it is installed. Without these ulimits a
# root podman under some sandboxes has setrlimit refused.
ENGINE=(podman)
if command -v runc >/dev/null 2>&1; then
    ENGINE+=(--runtime runc --cgroup-manager=cgroupfs)
fi
LIMITS=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)

pick_base() {
    if [ -n "${BASE:-}" ]; then
        echo "$BASE"
    elif timeout 120 "${ENGINE[@]}" pull -q docker.io/library/python:3.11-slim >/dev/null 2>&1; then
        echo docker.io/library/python:3.11-slim
    else
        if ! "${ENGINE[@]}" image exists "$LOCAL_BASE"; then
            make_local_base >&2
        fi
        echo "$LOCAL_BASE"
    fi
}

make_local_base() {
    echo "no registry reachable: making $LOCAL_BASE with debootstrap"
    if [ "$(id -u)" != 0 ] || ! command -v debootstrap >/dev/null 2>&1; then
        echo "docker-test: no registry, and a local base needs root and debootstrap" >&2
        exit 1
    fi
    local rootfs
    rootfs=$(mktemp -d /var/tmp/mmfs-debian-XXXXXX)
    local t0=$SECONDS
    debootstrap --variant=minbase bookworm "$rootfs" >"$rootfs.log" 2>&1 \
        || { echo "debootstrap failed, see $rootfs.log" >&2; exit 1; }
    tar -C "$rootfs" -c . | "${ENGINE[@]}" import - "$LOCAL_BASE" >/dev/null
    rm -rf "$rootfs" "$rootfs.log"
    echo "made $LOCAL_BASE in $((SECONDS - t0)) s"
}

if [ "${DOCKER_TEST_BUILD:-1}" = 0 ]; then
    BASE_IMAGE="(not built now)"
    build_s=0
else
    BASE_IMAGE=$(pick_base)
    CA=/etc/ssl/certs/ca-certificates.crt
    CA_ARGS=()
    if [ -f "$CA" ]; then  # PyPI behind an intercepting proxy: pip inside the build needs the host's CAs
        CA_ARGS=(-v "$CA:/host-ca.crt:ro" --build-arg PIP_CERT=/host-ca.crt)
    fi
    echo "building $IMAGE from $BASE_IMAGE"
    t0=$SECONDS
    "${ENGINE[@]}" build "${LIMITS[@]}" --network host "${CA_ARGS[@]}" \
        --build-arg BASE="$BASE_IMAGE" -t "$IMAGE" .
    build_s=$((SECONDS - t0))
fi

data=$(mktemp -d /var/tmp/mmfs-docker-test-XXXXXX)
trap 'rm -rf "$data"' EXIT
chmod 0777 "$data"  # the image runs as a non-root user (uid 10001)
# a read-only root: /tmp (numba, matplotlib) and the user's cache (the label bridge's class vectors)
# are tmpfs, the store is the one writable mount
RUN=("${ENGINE[@]}" run --rm "${LIMITS[@]}" --network none --read-only --tmpfs /tmp
     --tmpfs /home/mmfs/.cache -v "$data:/data")

echo "smoke test: mmfs demo, then mmfs status, in the container (no network, read-only root)"
t0=$SECONDS
"${RUN[@]}" "$IMAGE" demo --store /data/store --json >"$data/demo.json"
"${RUN[@]}" "$IMAGE" status --store /data/store --json >"$data/status.json"
run_s=$((SECONDS - t0))

python3 - "$data/demo.json" "$data/status.json" <<'EOF'
import json, sys

demo, status = (json.load(open(p)) for p in sys.argv[1:3])
run = demo["run"]
# the sample folder: video, audio, photos and text; one deliberately broken clip (data/SAMPLES.md)
n = run["n_inputs"]
assert n >= 6 and run["n_ok"] == n - 1 and run["n_quarantined"] == 1, run
assert demo["hits"], "the demo's example search found nothing"
tables = status["tables"]
for name in ("media", "frames", "flow", "audio", "text", "segments", "quarantine"):
    assert tables[name]["rows"] > 0, (name, tables[name])
assert tables["media"]["rows"] == n, tables["media"]
assert sum(status["quarantine"].values()) == 1, status["quarantine"]  # the broken clip, once
print("store checked:", {n: t["rows"] for n, t in sorted(tables.items())})
EOF

size=$("${ENGINE[@]}" image inspect --format '{{.Size}}' "$IMAGE")
echo "docker-test passed: base $BASE_IMAGE, build ${build_s} s, demo + status ${run_s} s," \
     "image $((size / 1024 / 1024)) MiB"
