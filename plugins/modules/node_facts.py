#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: node_facts
short_description: What a deploy reads of a node - RDMA ports, GPUs, memory, Docker's GPU runtime, name - in one run
description:
  - Reads in one module run what M(sparkops.cluster.ibdev2netdev), M(sparkops.cluster.gpu_facts),
    M(sparkops.cluster.memory_facts) and M(community.docker.docker_host_info) read in four, and
    looks for the NVIDIA container toolkit's hook and for what a host name resolves to. Each
    Ansible task is one round trip to every node; the deploy's facts step is one task with it.
  - The RDMA ports are C(ibdev2netdev)'s (or sysfs'), as M(sparkops.cluster.ibdev2netdev) with the
    same O(devices) returns them; the GPUs and the memory set the same facts, C(sparkops_gpu) and
    C(sparkops_memory), as M(sparkops.cluster.gpu_facts) and M(sparkops.cluster.memory_facts).
  - Docker's runtimes are those C(docker info) lists; the module fails naming the fix when no
    Docker engine answers. C(getent hosts) is bounded by O(command_timeout); a resolver that
    fails or hangs gives RV(hostname.addresses) null and RV(hostname.note), not a failure.
  - Changes nothing, never reports C(changed).
version_added: 0.2.0
author: sparkops.cluster developers (@sparkops)
extends_documentation_fragment:
  - sparkops.cluster.attributes
  - sparkops.cluster.attributes.READ_ONLY
  - sparkops.cluster.memory
  - sparkops.cluster.docker
options:
  devices:
    description:
      - Keep only RDMA devices matching one of these shell patterns, as
        O(sparkops.cluster.ibdev2netdev#module:devices) does. With O(rails) and no O(devices), the
        rails' RDMA devices.
    type: list
    elements: str
    default: []
  rails:
    description:
      - The node's planned rails (each a mapping with at least C(name), C(netdev) and C(rdma_device),
        as the plan's node entry gives them). RV(preflight) says for each whether its RDMA device's
        port is up on its netdev, and the netdev's MTU.
    type: list
    elements: dict
    default: []
  model_dir:
    description:
      - A model directory to read C(config.json) from (Hugging Face's format). RV(preflight.checkpoint)
        holds the facts the preflight judges (architecture, heads, KV cache layers, context,
        MoE, hybrid attention, quantization). Unset, nothing is read.
      - C(config.json) may be a symlink (a hub snapshot's is); what it reaches must be a regular file of at
        most 1 MiB. A directory without one, or one that is not JSON, gives a note, not a failure.
    type: path
  rdma_source:
    description: Where to read the RDMA mapping. C(auto) uses C(ibdev2netdev) when installed, else sysfs.
    type: str
    choices: [auto, tool, sysfs]
    default: auto
  sysfs_root:
    description: Root of the sysfs tree (the sysfs source of the RDMA mapping and the netdevs' MTU).
    type: path
    default: /sys
  gpu_required:
    description: Fail when C(nvidia-smi) is not installed; when false, report zero GPUs.
    type: bool
    default: true
  hostname:
    description: A name to resolve with C(getent hosts), as the node's programs resolve it (Ray, NCCL). Unset, none.
    type: str
  command_timeout:
    description:
      - Seconds each external program (C(ibdev2netdev), C(nvidia-smi), C(docker), C(getent)) may take.
        Past it, the program's whole process group is killed; the module fails naming the command
        and the limit, except for C(getent) (see RV(hostname.note)). Must be above 0.
    type: int
    default: 30
notes:
  - The individual modules stay for use on their own; this one calls the same code
    (C(module_utils/_nodefacts), C(module_utils/_memory)).
"""

EXAMPLES = r"""
- name: Read the node
  sparkops.cluster.node_facts:
    devices: [rocep1s0f1, roceP2p1s0f1]
    hostname: "{{ inventory_hostname_short }}"
  register: __node

- name: Docker can give the engine a GPU
  ansible.builtin.assert:
    that: "'nvidia' in __node.docker_runtimes or __node.toolkit_hook"
"""

RETURN = r"""
ansible_facts:
  description: The facts M(sparkops.cluster.gpu_facts) and M(sparkops.cluster.memory_facts) set, with the same content.
  returned: always
  type: dict
  contains:
    sparkops_gpu:
      description: GPU inventory of the node (see M(sparkops.cluster.gpu_facts)).
      returned: always
      type: dict
    sparkops_memory:
      description: The node's memory and the leak check (see M(sparkops.cluster.memory_facts)).
      returned: always
      type: dict
rdma:
  description:
    - What M(sparkops.cluster.ibdev2netdev) returns for O(devices) (source, ports, up_devices, up_netdevs,
      nccl_ib_hca, nccl_socket_ifname, gloo_socket_ifname, ucx_net_devices, half_ports).
  returned: always
  type: dict
  sample:
    source: ibdev2netdev
    ports: [{device: rocep1s0f1, port: 1, netdev: enp1s0f1np1, state: Up, up: true, mtu: 9000}]
    up_devices: [rocep1s0f1]
    gloo_socket_ifname: enp1s0f1np1
docker_runtimes:
  description: The runtimes the Docker engine lists (C(docker info)), sorted.
  returned: always
  type: list
  elements: str
  sample: [io.containerd.runc.v2, nvidia, runc]
toolkit_hook:
  description: The NVIDIA container toolkit's C(nvidia-container-runtime-hook) found in C(/usr/bin) or C(/usr/local/bin), or null.
  returned: always
  type: str
  sample: /usr/bin/nvidia-container-runtime-hook
hostname:
  description: O(hostname) and what it resolves to; null without O(hostname).
  returned: always
  type: dict
  contains:
    name: {description: "O(hostname).", type: str, returned: with hostname}
    addresses:
      description: The addresses in C(getent)'s order, [] when the name does not resolve, null when getent failed.
      type: list
      elements: str
      returned: with hostname
      sample: [127.0.1.1]
    note: {description: "Why addresses is null.", type: str, returned: with hostname}
preflight:
  description:
    - What the dynamic preflight's rules read of this node (the deploy keeps it as C(sparkops_node_facts)).
  returned: always
  type: dict
  contains:
    driver_version: {description: The GPU driver's version (null without a GPU)., type: str, returned: always}
    rails_up:
      description: Per rail of O(rails), whether its RDMA device's port is up on the rail's netdev.
      type: dict
      returned: always
      sample: {rail1: true, rail2: false}
    rail_mtu: {description: "Per rail of O(rails) whose netdev was found, its MTU.", type: dict, returned: always}
    mem_available: {description: MemAvailable in bytes., type: int, returned: always}
    reboot_required: {description: Memory is held by no process (see M(sparkops.cluster.memory_facts))., type: bool, returned: always}
    reboot_reason: {description: "Why, or null.", type: str, returned: always}
    hostname_loopback:
      description: The loopback address O(hostname) resolves to first, or null.
      type: str
      returned: always
    gloo_socket_ifname: {description: The netdev of the first rail that is up., type: str, returned: always}
    docker_gpus: {description: Docker has the nvidia runtime or the toolkit's hook., type: bool, returned: always}
    checkpoint:
      description:
        - With O(model_dir), the checkpoint's facts (C(facts), null when config.json could not be read, with C(note)
          saying why) and C(path); null without.
      type: dict
      returned: always
      sample:
        path: /var/lib/sparkops/models/qwen/config.json
        facts: {architecture: qwen3_5_moe, attention_heads: 32, kv_heads: 2, head_dim: 256, kv_layers: 15}
        note: null
    rail_link:
      description:
        - Per rail of O(rails), its port's link as sysfs shows it (null where sysfs has no value) -
          C(speed_mbps) (the negotiated Ethernet speed), C(pcie_width) and C(pcie_max_width) (lanes),
          C(pcie_speed_gts) and C(pcie_max_speed_gts), C(firmware) (the adapter's), C(gids) (the port's GID table
          in use, each C(index), C(gid) and C(type)).
      type: dict
      returned: always
      sample: {rail1: {speed_mbps: 200000, pcie_width: 4, pcie_max_width: 4, pcie_speed_gts: 32.0, pcie_max_speed_gts: 32.0, firmware: 28.45.4028}}
    kernel_release: {description: "The running kernel's release (uname -r).", type: str, returned: always}
    kho_off: {description: "The kernel command line holds kho=off.", type: bool, returned: always}
    cma_total: {description: "CmaTotal in bytes, null when the kernel has no CMA.", type: int, returned: always}
    cma_free: {description: "CmaFree in bytes, null when the kernel has no CMA.", type: int, returned: always}
"""

from ansible.module_utils.basic import AnsibleModule

import os

from ansible_collections.sparkops.cluster.plugins.module_utils import _checkpoint, _docker, _memory, _nodefacts, _rdma
from ansible_collections.sparkops.cluster.plugins.module_utils._command import require_positive


def main():
    module = AnsibleModule(
        argument_spec=dict(
            devices=dict(type="list", elements="str", default=[]),
            rdma_source=dict(type="str", choices=["auto", "tool", "sysfs"], default="auto"),
            sysfs_root=dict(type="path", default="/sys"),
            gpu_required=dict(type="bool", default=True),
            hostname=dict(type="str"),
            rails=dict(type="list", elements="dict", default=[]),
            model_dir=dict(type="path"),
            **dict(_memory.LEAK_OPTIONS, **_docker.OPTIONS)
        ),
        supports_check_mode=True,
    )
    p = module.params
    require_positive(module, "command_timeout")
    limit = p["command_timeout"]
    for i, rail in enumerate(p["rails"]):
        if not all(isinstance(rail.get(k), str) and rail[k] for k in ("name", "netdev", "rdma_device")):
            module.fail_json(msg="rails[%d] must give name, netdev and rdma_device, got %r" % (i, rail))
    devices = p["devices"] or [r["rdma_device"] for r in p["rails"]]
    memory = _memory.facts(module)
    source, rdma = _nodefacts.rdma(module, p["rdma_source"], devices, [], False, p["sysfs_root"], limit)
    gpu = _nodefacts.gpus(module, p["gpu_required"], limit)
    runtimes = _nodefacts.docker_runtimes(module, limit)
    hostname = None
    if p["hostname"]:
        addresses, note = _nodefacts.resolve(p["hostname"], limit)
        hostname = {"name": p["hostname"], "addresses": addresses, "note": note}
    checkpoint = None
    if p["model_dir"]:
        config, note = _checkpoint.read(p["model_dir"])
        checkpoint = {"path": os.path.join(p["model_dir"], _checkpoint.CONFIG), "note": note,
                      "facts": _checkpoint.facts(config) if config is not None else None}
    hook = _nodefacts.toolkit_hook()
    ports = {port.get("netdev"): port for port in rdma.get("ports") or []}
    links = {}
    for r in p["rails"]:
        port = ports.get(r["netdev"]) or {"netdev": r["netdev"], "device": r["rdma_device"], "port": 1}
        links[r["name"]] = port.get("link") or dict(_rdma.link(port, p["sysfs_root"]), gids=_rdma.gids(port, p["sysfs_root"]))
    module.exit_json(changed=False, ansible_facts={"sparkops_gpu": gpu, "sparkops_memory": memory},
                     rdma=dict(rdma, source=source), docker_runtimes=runtimes, toolkit_hook=hook, hostname=hostname,
                     preflight=_nodefacts.preflight_view(p["rails"], rdma, gpu, memory, runtimes, hook, hostname,
                                                         checkpoint, links, _nodefacts.kernel()))


if __name__ == "__main__":
    main()
