# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: incident_line
short_description: One line of a watchdog incident
description:
  - The summary of an incident file the watchdog wrote (its JSON text) - time, node, what it found, and the
    known-failures rows that name it; a file that is not an incident is named as such.
version_added: 0.3.0
author: sparkops.cluster developers (@sparkops)
options:
  _input:
    description: The incident file's text.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: The incident, in one line
  ansible.builtin.debug:
    msg: "{{ incident_text | sparkops.cluster.incident_line }}"
"""

RETURN = r"""
_value:
  description: The incident's line.
  type: str
"""

from ansible_collections.sparkops.cluster.plugins.module_utils._watchdog import incident_line


class FilterModule:
    def filters(self):
        return {"incident_line": incident_line}
