# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The simulated cluster at any size, for scripts/bench.sh (not a test).

    cluster.py up N INVENTORY_DIR    N node containers and an inventory for them
    cluster.py down INVENTORY_DIR    remove them, their engine containers and compile caches

The nodes are the molecule scenario's (molecule/cluster/molecule.yml): the same image,
options, networks and volumes as its first platform, one definition; only the name, the
addresses (.10 + index on every network) and the per-node paths differ. The inventory
holds the nodes in order (the first is the head), each with its sparkops_node_index and its
management address (ansible_host: Ansible reaches it over SSH there), and links
inventory/simulated/group_vars, so the deploy runs exactly as on the 4-node cluster.
Run it as root on the machine whose Docker engine runs the nodes.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SCENARIO = REPO / "molecule" / "cluster" / "molecule.yml"
NAMES = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
LABEL = "sparkops.bench=node"
BOOT_TIMEOUT = 180


def run(*argv, check=True, timeout=300):
    """A docker command, bounded; its stdout."""
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        sys.exit("%s failed (rc %d): %s" % (" ".join(argv), proc.returncode, (proc.stderr or proc.stdout).strip()))
    return proc.stdout


def platform():
    """The molecule scenario's first platform, environment variables expanded as molecule does."""
    text = re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: os.environ.get(m.group(1), m.group(2)), SCENARIO.read_text())
    return yaml.safe_load(text)["platforms"][0]


def node_names(count):
    if not 2 <= count <= len(NAMES):
        sys.exit("the simulated cluster has 2 to %d nodes, not %d" % (len(NAMES), count))
    return ["spark-" + n for n in NAMES[:count]]


def address(subnet, index):
    return str(ipaddress.ip_network(subnet)[10 + index])


def up(count, inventory):
    base = platform()
    first = base["name"]
    subnets = {n["name"]: n["ipam_config"][0]["subnet"] for n in base["docker_networks"]}
    for net in base["docker_networks"]:
        if not run("docker", "network", "ls", "-q", "--filter", "name=^%s$" % net["name"]).strip():
            opts = [x for k, v in (net.get("driver_options") or {}).items() for x in ("--opt", "%s=%s" % (k, v))]
            run("docker", "network", "create", *opts, "--subnet", subnets[net["name"]], net["name"])
    names = node_names(count)
    for index, name in enumerate(names):
        if run("docker", "ps", "-aq", "--filter", "name=^%s$" % name).strip():
            sys.exit("a container %s exists: remove the cluster first (molecule destroy -s cluster, or cluster.py down)"
                     % name)
        argv = ["docker", "run", "-d", "--name", name, "--hostname", name, "--label", LABEL,
                "--cgroupns", base["cgroupns_mode"]]
        argv += [x for c in base["capabilities"] for x in ("--cap-add", c)]
        argv += [x for o in base["security_opts"] for x in ("--security-opt", o)]
        argv += [x for t in base["tmpfs"] for x in ("--tmpfs", t)]
        argv += [x for v in base["volumes"] for x in ("-v", v.replace(first, name))]
        nets = base["networks"]
        argv += ["--network", nets[0]["name"], "--ip", address(subnets[nets[0]["name"]], index)]
        run(*argv, base["image"], *base["command"].split())
        for net in nets[1:]:
            run("docker", "network", "connect", "--ip", address(subnets[net["name"]], index), net["name"], name)
    deadline = time.monotonic() + BOOT_TIMEOUT
    for name in names:  # systemd up in every node (as converge.yml waits)
        left = max(1, int(deadline - time.monotonic()))
        state = run("docker", "exec", name, "timeout", str(left), "systemctl", "is-system-running", "--wait",
                    check=False, timeout=left + 10).strip()
        if state not in ("running", "degraded"):
            sys.exit("%s did not finish booting within %d s (systemd: %s)" % (name, BOOT_TIMEOUT, state or "no answer"))
    inv = Path(inventory)
    (inv / "host_vars").mkdir(parents=True, exist_ok=True)
    link = inv / "group_vars"
    if not link.exists():
        link.symlink_to(REPO / "inventory" / "simulated" / "group_vars")
    # reached over SSH at their management addresses (group_vars/sparkops_nodes/connection.yml)
    hosts = {"all": {"children": {"sparkops_nodes": {"hosts": {name: None for name in names}}}}}
    (inv / "hosts.yml").write_text("# the simulated cluster of scripts/bench.sh, %d nodes (scripts/bench/cluster.py)\n"
                                   % count + yaml.safe_dump(hosts, sort_keys=False))
    for index, name in enumerate(names):
        (inv / "host_vars" / ("%s.yml" % name)).write_text("sparkops_node_index: %d\nansible_host: %s\n" % (
            index, address(subnets[nets[0]["name"]], index)))
    print(json.dumps({"nodes": names, "inventory": str(inv)}))


def down(inventory):
    hosts = yaml.safe_load((Path(inventory) / "hosts.yml").read_text())
    names = list(hosts["all"]["children"]["sparkops_nodes"]["hosts"])
    engines = run("docker", "ps", "-aq", "--filter", "label=sparkops.cluster/component=engine").split()
    if engines:
        run("docker", "rm", "-f", *engines)
    present = [n for n in names if run("docker", "ps", "-aq", "--filter", "name=^%s$" % n).strip()]
    if present:
        run("docker", "rm", "-f", *present)
    # the engines' compile cache: the role's default volume, which the simulation does not set
    defaults = yaml.safe_load((REPO / "roles" / "engine_container" / "defaults" / "main.yml").read_text())
    run("docker", "volume", "rm", "--force", defaults["engine_container_compile_cache"], check=False)
    print(json.dumps({"removed": present}))


def main(argv):
    if len(argv) == 4 and argv[1] == "up" and argv[2].isdigit():
        up(int(argv[2]), argv[3])
    elif len(argv) == 3 and argv[1] == "down":
        down(argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
