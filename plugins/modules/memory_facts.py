#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: memory_facts
short_description: A node's memory and whether memory is held by no process (read only)
description:
  - Reads C(/proc/meminfo) (total, free, available, page cache, buffers, swap in use) and
    sets the C(sparkops_memory) fact. Changes nothing, never reports C(changed).
  - Looks for memory that no process holds. On GB10 (unified memory) a container killed
    during a load leaves its GPU memory allocated until a reboot (about 33 GB per failed
    launch reported on two Sparks; vllm PR#45179). When MemTotal - MemAvailable minus what
    processes (RssAnon), GPU processes on unified memory (C(nvidia-smi)) and the kernel's counters account
    for exceeds O(leak_threshold_gb), C(reboot_required) is true with the figure and the
    reason. With O(settle_timeout) it waits for a just-stopped engine's memory to come back.
  - C(playbooks/teardown.yml) and C(playbooks/status.yml) use it, and the deploy's facts step
    reads the same through M(sparkops.cluster.node_facts); the cache drop before
    an engine start is M(sparkops.cluster.memory_reclaim).
version_added: 0.2.0
author: sparkops.cluster developers (@sparkops)
extends_documentation_fragment:
  - sparkops.cluster.attributes
  - sparkops.cluster.attributes.READ_ONLY
  - sparkops.cluster.memory
"""

EXAMPLES = r"""
- name: Read memory; refuse a node whose memory is held by no process
  sparkops.cluster.memory_facts:
    fail_on_leak: true

- name: Wait up to two minutes for a stopped engine's memory to come back
  sparkops.cluster.memory_facts:
    settle_timeout: 120
"""

RETURN = r"""
ansible_facts:
  description: Facts set by the module.
  returned: always
  type: dict
  contains:
    sparkops_memory:
      description: The node's memory, in bytes, and the leak check.
      returned: always
      type: dict
      contains:
        mem_total: {description: "MemTotal.", type: int, returned: always}
        mem_free: {description: "MemFree.", type: int, returned: always}
        mem_available: {description: "MemAvailable.", type: int, returned: always}
        cached: {description: "Cached (page cache).", type: int, returned: always}
        buffers: {description: "Buffers.", type: int, returned: always}
        swap_used: {description: "SwapTotal - SwapFree.", type: int, returned: always}
        cma_total: {description: "CmaTotal (the contiguous memory area), null when the kernel has none.", type: int, returned: always}
        cma_free: {description: "CmaFree, null when the kernel has none.", type: int, returned: always}
        leak:
          description: The leak check's figures in bytes (used, process_rss, gpu_processes, kernel, unaccounted), or null when skipped.
          type: dict
          returned: always
        reboot_required: {description: "True when memory held by no process exceeds the threshold.", type: bool, returned: always}
        settled_after: {description: "Seconds waited before the memory came back (0 when at once or skipped).", type: int, returned: always}
        reason:
          description: Why a reboot is required, or why the leak check was skipped; null otherwise.
          type: str
          returned: always
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sparkops.cluster.plugins.module_utils import _memory


def main():
    module = AnsibleModule(argument_spec=dict(**_memory.LEAK_OPTIONS), supports_check_mode=True)
    module.exit_json(changed=False, ansible_facts={"sparkops_memory": _memory.facts(module)})


if __name__ == "__main__":
    main()
