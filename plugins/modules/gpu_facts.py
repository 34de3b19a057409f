#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: gpu_facts
short_description: NVIDIA GPU facts from nvidia-smi, GB10-aware
description:
  - Reads C(nvidia-smi) (the query CSV form for per-GPU fields, the default table for
    the CUDA version and the processes) and sets the C(sparkops_gpu) fact.
  - On GB10 (DGX Spark) memory fields read C([N/A]) or C(Not Supported) because the
    GPU shares the system memory; they are returned as null and the module goes on.
    Read C(/proc/meminfo) (see M(sparkops.cluster.memory_reclaim)) for memory.
  - When the query form lists no GPU while the table shows some (seen on a driver whose
    NVML query fails), the GPUs are taken from the table, with the fields the table
    lacks as null, and a warning says so.
  - The preflight compares RV(ansible_facts.sparkops_gpu.driver_version) across nodes.
version_added: 0.1.0
author: sparkops.cluster developers (@sparkops)
extends_documentation_fragment:
  - sparkops.cluster.attributes
  - sparkops.cluster.attributes.READ_ONLY
  - sparkops.cluster.attributes.COMMAND_TIMEOUT
options:
  required:
    description: Fail when C(nvidia-smi) is not installed; when false, report zero GPUs.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Read GPU facts
  sparkops.cluster.gpu_facts:

- name: Show the driver
  ansible.builtin.debug:
    msg: "{{ ansible_facts.sparkops_gpu.driver_version }} / CUDA {{ ansible_facts.sparkops_gpu.cuda_version }}"
"""

RETURN = r"""
ansible_facts:
  description: Facts set by the module.
  returned: always
  type: dict
  contains:
    sparkops_gpu:
      description: GPU inventory of the node.
      returned: always
      type: dict
      contains:
        count: {description: "Number of GPUs.", type: int, returned: always, sample: 1}
        driver_version: {description: "NVIDIA driver version, or null without GPUs.", type: str, returned: always, sample: "580.142"}
        cuda_version: {description: "Highest CUDA version the driver supports.", type: str, returned: always, sample: "13.0"}
        gpus:
          description: One entry per GPU.
          type: list
          elements: dict
          returned: always
          contains:
            index: {description: "GPU index.", type: int, returned: always, sample: 0}
            name: {description: "Product name.", type: str, returned: always, sample: NVIDIA GB10}
            uuid: {description: "GPU UUID.", type: str, returned: always, sample: GPU-5c2d0000-0000-0000-0000-000000000000}
            compute_capability: {description: "MAJOR.MINOR.", type: str, returned: always, sample: "12.1"}
            memory_total: {description: "Bytes, or null when not supported (GB10).", type: int, returned: always, sample: null}
            memory_used: {description: "Bytes, or null when not supported (GB10).", type: int, returned: always, sample: null}
            memory_free: {description: "Bytes, or null when not supported (GB10).", type: int, returned: always, sample: null}
            unified_memory: {description: "True when memory fields are not supported (GB10-style unified memory).", type: bool, returned: always}
            pci_bus_id: {description: "PCI bus id.", type: str, returned: always, sample: "0000000F:01:00.0"}
        processes:
          description: Processes on the GPUs (pid, type, name, used_memory in bytes or null).
          type: list
          elements: dict
          returned: always
          sample: [{"gpu": 0, "pid": 4174, "type": "G", "name": "/usr/lib/xorg/Xorg", "used_memory": 88080384}]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sparkops.cluster.plugins.module_utils import _nvsmi
from ansible_collections.sparkops.cluster.plugins.module_utils._command import require_positive
from ansible_collections.sparkops.cluster.plugins.module_utils._nodefacts import gpus

FIELDS = _nvsmi.GPU_FIELDS


def main():
    module = AnsibleModule(argument_spec=dict(required=dict(type="bool", default=True),
                                              command_timeout=dict(type="int", default=30)),
                           supports_check_mode=True)
    require_positive(module, "command_timeout")
    facts = gpus(module, module.params["required"], module.params["command_timeout"])
    module.exit_json(changed=False, ansible_facts={"sparkops_gpu": facts})


if __name__ == "__main__":
    main()
