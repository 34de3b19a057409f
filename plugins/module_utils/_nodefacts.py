# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading a node's hardware from a module: the RDMA ports (ibdev2netdev or sysfs), the GPUs
(nvidia-smi), Docker's runtimes, the NVIDIA container toolkit's hook and a name's resolution,
each program bounded. Shared by ibdev2netdev, gpu_facts and node_facts (which reads all of
them in one module run); the parsers are in _rdma and _nvsmi."""

from __future__ import annotations

import json
import os

from ansible_collections.sparkops.cluster.plugins.module_utils import _command, _docker, _nvsmi, _rdma
from ansible_collections.sparkops.cluster.plugins.module_utils._command import last_line, run_module_tool, run_tool
from ansible_collections.sparkops.cluster.plugins.module_utils._errors import ToolOutputError

# where the NVIDIA container toolkit installs the hook through which Docker gives GPUs
HOOK_PATHS = ("/usr/bin/nvidia-container-runtime-hook", "/usr/local/bin/nvidia-container-runtime-hook")
# getent's exit status for a key it does not find (getent(1))
GETENT_NOT_FOUND = 2


def rdma(module, source, devices, netdevs, verbose, sysfs_root, limit):
    """(source, summary) of the RDMA ports: ibdev2netdev when installed (or asked for), else
    sysfs; selected by the device and netdev patterns, each with its netdev's MTU."""
    tool = None if source == "sysfs" else module.get_bin_path("ibdev2netdev", required=source == "tool")
    if tool:
        out = run_tool(module, [tool] + (["-v"] if verbose else []), limit)
        try:
            ports = _rdma.parse_ibdev2netdev(out)
        except ToolOutputError as exc:
            module.fail_json(msg=str(exc), stdout=out)
        source = "ibdev2netdev"
    else:
        ports = _rdma.read_sysfs(sysfs_root)
        source = "sysfs"
    result = _rdma.summarize(_rdma.with_mtu(_rdma.select(ports, devices, netdevs), sysfs_root))
    for warning in result["half_ports"]:
        module.warn(warning)
    return source, result


def gpus(module, required, limit):
    """The sparkops_gpu fact from nvidia-smi (its query CSV and its table); with no nvidia-smi,
    a failure when required, else no GPU."""
    smi = module.get_bin_path("nvidia-smi")
    if not smi:
        if required:
            module.fail_json(msg="nvidia-smi not found on this node: install the NVIDIA driver, "
                                 "or set required=false to report no GPUs")
        return _nvsmi.NO_GPU
    csv = run_tool(module, [smi, "--query-gpu=" + ",".join(_nvsmi.GPU_FIELDS), "--format=csv,noheader,nounits"],
                   limit)
    table = run_tool(module, [smi], limit)
    try:
        facts, notes = _nvsmi.gpu_inventory(csv, table)
    except (ToolOutputError, ValueError) as exc:
        module.fail_json(msg=str(exc), stdout=csv + table)
    for note in notes:
        module.warn(note)
    return facts


def docker_runtimes(module, limit):
    """The names of the runtimes the Docker engine has (`docker info`), sorted; the module
    fails naming the fix when there is no docker CLI or no engine answers."""
    docker = module.get_bin_path("docker")
    if not docker:
        module.fail_json(msg="docker not found on this node: install Docker Engine "
                             "(https://docs.docker.com/engine/install/)")
    argv = _docker.cli(module, docker) + ["info", "--format", "{{json .Runtimes}}"]
    rc, out, err = run_module_tool(module, argv, limit, ok=None)
    if rc != 0:
        module.fail_json(msg="the Docker engine did not answer `docker info` (rc=%d): %s. Start it "
                             "(systemctl start docker) or point docker_host at it."
                             % (rc, last_line(err or out) or "no output"), rc=rc, stdout=out, stderr=err, cmd=argv)
    try:
        runtimes = json.loads(out)
    except ValueError:
        runtimes = None
    if not isinstance(runtimes, dict):
        module.fail_json(msg="`docker info --format '{{json .Runtimes}}'` printed no JSON object: %r"
                             % (last_line(out) or out[:200]), stdout=out)
    return sorted(runtimes)


def toolkit_hook(paths=HOOK_PATHS):
    """The first of paths that exists (the NVIDIA container toolkit's hook), or None."""
    return next((p for p in paths if os.path.lexists(p)), None)


def resolve(name, limit):
    """(addresses, note) of `getent hosts NAME`, the resolver the node's programs use, in its
    order: [] when the name does not resolve; None with the reason when getent fails or hangs
    (bounded by limit), so that a broken resolver is reported, not taken for an answer."""
    try:
        rc, out, err = _command.run(["getent", "hosts", name], limit)
    except (_command.CommandTimeout, OSError) as exc:
        return None, "getent hosts %s: %s" % (name, exc)
    if rc == GETENT_NOT_FOUND:
        return [], None
    if rc != 0:
        return None, "getent hosts %s failed (rc=%d): %s" % (name, rc, last_line(err or out) or "no output")
    return [line.split()[0] for line in out.splitlines() if line.split()], None


def kernel(cmdline_path="/proc/cmdline"):
    """The running kernel's release and command line (what the drift rules read)."""
    try:
        with open(cmdline_path, "rb") as fh:
            cmdline = fh.read(65536).decode("utf-8", "replace").strip()
    except OSError:
        cmdline = None
    return {"release": os.uname().release, "cmdline": cmdline}


def preflight_view(rails, rdma_summary, gpu, memory, runtimes, hook, hostname, checkpoint=None, links=None,
                   kernel_facts=None):
    """What the dynamic preflight's rules read of one node (sparkops_node_facts), from what
    node_facts read: per planned rail ({name, netdev, rdma_device}) whether its RDMA device's
    port is up on the rail's netdev (a rail whose netdev is not its device's port counts as
    down, KF-13) and that netdev's MTU; the GPU driver; the memory; whether Docker can give a
    GPU; a host name that resolves to loopback (KF-19); the checkpoint read on the head; each
    rail's link as sysfs shows it (links: {rail: _rdma.link()}), the kernel and its CMA figures."""
    ports = {}
    for port in rdma_summary.get("ports") or []:
        ports.setdefault(port.get("netdev"), port)
    rails_up, rail_mtu = {}, {}
    for rail in rails:
        port = ports.get(rail.get("netdev")) or {}
        rails_up[rail["name"]] = bool(port.get("up"))
        if port.get("mtu"):
            rail_mtu[rail["name"]] = port["mtu"]
    addresses = (hostname or {}).get("addresses") or []
    return {
        "driver_version": gpu.get("driver_version"),
        "rails_up": rails_up,
        "rail_mtu": rail_mtu,
        "mem_available": memory.get("mem_available"),
        "reboot_required": memory.get("reboot_required"),
        "reboot_reason": memory.get("reason"),
        "hostname_loopback": addresses[0] if addresses and str(addresses[0]).startswith("127.") else None,
        "gloo_socket_ifname": rdma_summary.get("gloo_socket_ifname"),
        "docker_gpus": "nvidia" in runtimes or hook is not None,
        "checkpoint": checkpoint,
        "rail_link": dict(links or {}),
        "kernel_release": (kernel_facts or {}).get("release"),
        "kho_off": "kho=off" in ((kernel_facts or {}).get("cmdline") or "").split(),
        "cma_total": memory.get("cma_total"),
        "cma_free": memory.get("cma_free"),
    }
