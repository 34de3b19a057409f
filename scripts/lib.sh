#!/usr/bin/env bash
# Shared set-up for scripts/test.sh and scripts/demo.sh: everything a fresh Debian 12
# machine (as root) needs, each step skipped when already done.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${SPARKOPS_VENV:-$REPO/.venv}
CACHE=$REPO/.cache
export ANSIBLE_CONFIG=$REPO/ansible.cfg
export ANSIBLE_FORCE_COLOR=${ANSIBLE_FORCE_COLOR:-0}
export PY_COLORS=0
mkdir -p "$CACHE"

# Each stage's line goes to a file, so that stages run in a background lane (a subshell)
# are summed up with the others.
STAGES_FILE=$CACHE/stages.txt
FAILED_FILE=$CACHE/stages-failed.txt
: > "$STAGES_FILE"
: > "$FAILED_FILE"
stage() {  # stage NAME command...: run one stage, print and remember its duration
  local name=$1; shift
  local start=$SECONDS rc=0 log
  log=$CACHE/logs/$(printf '%s' "$name" | tr -c 'A-Za-z0-9' '-').log
  mkdir -p "$CACHE/logs"
  printf '\n=== [%s] %s\n' "$(date +%H:%M:%S)" "$name"
  # in this shell (not a pipeline's subshell): bootstrap's PATH and the images' env stay.
  # The braces make this shell, not the command's child, open the process substitution, so
  # that $! is tee's: for an external command bash opens it in the child, and $! stayed the
  # last background job's (the images lane's), which every check stage then waited for.
  { "$@"; } > >(tee "$log") 2>&1 || rc=$?
  wait $! 2>/dev/null || true  # tee has written everything
  [ $rc = 0 ] || printf '%s=%s\n' "$name" "$log" >> "$FAILED_FILE"
  local took=$((SECONDS - start))
  printf '%-28s %5d s  %s\n' "$name" "$took" "$([ $rc = 0 ] && echo ok || echo "FAILED rc=$rc")" >> "$STAGES_FILE"
  printf '=== %s: %d s (%s)\n' "$name" "$took" "$([ $rc = 0 ] && echo ok || echo "failed rc=$rc")"
  return $rc
}
summary() {
  local entry
  while IFS= read -r entry; do  # what failed, again at the end (a CI page shows the tail)
    printf '\n=== %s failed; its failed tasks (whole output in %s):\n' "${entry%%=*}" "${entry#*=}"
    python3 "$REPO/scripts/failed_tasks.py" "${entry#*=}" || true
  done < "$FAILED_FILE"
  printf '\n=== stage durations\n'
  cat "$STAGES_FILE"
  printf '%-28s %5d s\n' total "$SECONDS"
}

apt_install() {  # install Debian packages that are missing
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} = 0 ] && return 0
  echo "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The simulated cluster's engine containers ask for GPUs as on a Spark (DeviceRequests,
# driver nvidia). Docker's daemon accepts that when the NVIDIA Container Toolkit's hook is
# on its PATH at start: tests/doubles has a test double of it (it records that it ran).
SIM_HOOK=/usr/local/bin/nvidia-container-runtime-hook
install_hook_double() {  # true when it installed or replaced it
  cmp -s "$REPO/tests/doubles/nvidia-container-runtime-hook" "$SIM_HOOK" && return 1
  install -m 0755 "$REPO/tests/doubles/nvidia-container-runtime-hook" "$SIM_HOOK"
  echo "installed the test double of nvidia-container-runtime-hook in $SIM_HOOK"
}

start_dockerd() {
  echo "starting dockerd (no systemd on this machine)"
  # A daemon of its own session that inherits no descriptor but its log: started from a
  # shell, it would keep open the pipe of stage's tee (an fd such as 63) and the stage
  # would never end (bootstrap hung on a fresh machine, 2026-12-02).
  python3 -c '
import subprocess, sys
with open("/var/log/dockerd.log", "ab") as log:
    subprocess.Popen(["dockerd"], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                     close_fds=True, start_new_session=True)
'
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { tail -20 /var/log/dockerd.log; echo "dockerd did not start"; return 1; }
}

ensure_docker() {
  local fresh_hook=false
  install_hook_double && fresh_hook=true
  if docker info >/dev/null 2>&1; then
    if $fresh_hook && pgrep -x dockerd >/dev/null; then
      # the daemon looks for the hook at start only
      echo "restarting dockerd so that it sees the hook (its running containers stop)"
      pkill -x dockerd; for _ in $(seq 60); do pgrep -x dockerd >/dev/null || break; sleep 1; done
      start_dockerd || return 1
    fi
    echo "Docker engine answers: $(docker version --format '{{.Server.Version}}')"
    return 0
  fi
  apt_install docker.io
  docker info >/dev/null 2>&1 || start_dockerd || return 1
  echo "Docker engine started: $(docker version --format '{{.Server.Version}}')"
}

ensure_venv() {
  local stamp=$VENV/.requirements.sha256 want
  want=$(sha256sum "$REPO/requirements-dev.txt" | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    echo "virtualenv $VENV up to date"
  else
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip >/dev/null
    "$VENV/bin/pip" install -q -r "$REPO/requirements-dev.txt"
    echo "$want" > "$stamp"
    echo "virtualenv $VENV installed"
  fi
  export PATH=$VENV/bin:$PATH
}

bootstrap() {
  # rsync: model_copy's unit tests run the real one; iputils-ping: rail_ping's; openssh-client:
  # Ansible's connection to the simulated nodes; systemd (systemd-analyze) and nftables (nft):
  # the unit tests load every unit the roles write with systemd's own parser
  apt_install python3-venv git debootstrap iproute2 ca-certificates rsync iputils-ping openssh-client systemd nftables
  ensure_venv
  ensure_docker
  # An installed copy of this collection (an older molecule prerun, ansible-galaxy)
  # would shadow the checkout for ansible-lint, which searches ~/.ansible first.
  if [ -e "$HOME/.ansible/collections/ansible_collections/sparkops/cluster" ]; then
    echo "removing the installed copy $HOME/.ansible/collections/ansible_collections/sparkops/cluster (it shadows this checkout)"
    rm -rf "$HOME/.ansible/collections/ansible_collections/sparkops/cluster"
  fi
}

build_images() {
  "$REPO/tests/images/build.sh"
  set -a; . "$CACHE/images.env"; set +a
  sim_ssh
}

# Ansible reaches the simulated nodes over SSH on the management network, as the user nvidia
# with sudo (tests/images/node), as inventory/example-4-sparks reaches a Spark. This machine's
# key pair for it (the public key is mounted into every node as nvidia's authorized key), and a
# known_hosts file with the node image's host key, which every node of the image shares, for
# the management network's addresses: host key checking stays on.
SIM_SSH=/var/lib/sparkops-sim/ssh
sim_ssh() {
  local hostkey
  install -d -m 0700 "$SIM_SSH"
  [ -f "$SIM_SSH/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C sparkops-sim -f "$SIM_SSH/id_ed25519"
  hostkey=$(timeout 120 docker run --rm --network none --entrypoint cat "$SPARKOPS_NODE_IMAGE" /etc/ssh/ssh_host_ed25519_key.pub) \
    && [ -n "$hostkey" ] || { echo "could not read the SSH host key of $SPARKOPS_NODE_IMAGE"; return 1; }
  # the management network of molecule/cluster/molecule.yml, 172.28.10.0/24
  printf '172.28.10.* %s\n' "$(cut -d' ' -f1,2 <<<"$hostkey")" > "$SIM_SSH/known_hosts.tmp"
  mv "$SIM_SSH/known_hosts.tmp" "$SIM_SSH/known_hosts"
  echo "SSH to the simulated nodes: $SIM_SSH/id_ed25519, host key $(cut -d' ' -f1 <<<"$hostkey")"
}

# The simulated cluster: 4 nodes of the molecule scenario "cluster".
cluster_up() {
  (cd "$REPO" && molecule create -s cluster)
}
