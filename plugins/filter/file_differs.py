# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: file_differs
short_description: Whether a file on the node differs from what a task would write
description:
  - Takes what M(sparkops.cluster.file_facts) read (O(path) picks the file), what
    M(ansible.builtin.stat) read of a file (a single result, or the results of a
    loop over paths, with O(path) picking one), or what M(ansible.builtin.find) found with
    C(get_checksum=true) (a file it did not find is missing), and says whether a write is due - the file is
    missing or no regular file, its SHA-1 is not that of O(content), or its mode, owner or
    group differ.
  - The roles read their files with one C(file_facts) call and run M(ansible.builtin.template) or
    M(ansible.builtin.copy) only where this is true. An unchanged copy or template costs five
    round trips to a node (the remote home, a temporary directory, stat, file, clean up); a
    C(stat) costs one.
  - A stat result without a checksum (C(get_checksum=false)) or of a failed read counts as
    differing, so the write task decides.
version_added: 0.2.0
author: sparkops.cluster developers (@sparkops)
positional: path, content, mode, owner, group, kind
options:
  _input:
    description: A registered C(file_facts), C(stat), loop of C(stat) over paths, or C(find) result.
    type: raw
    required: true
  path:
    description: The file, when O(_input) is a C(file_facts) result, a loop over several or a C(find) result.
    type: str
  content:
    description: What the file must hold (a rendered template, a copy's content); omitted, the content is not compared.
    type: str
  mode:
    description: The mode it must have, as a string of octal digits (C(0644)).
    type: str
  owner:
    description: The owner's name it must have.
    type: str
  group:
    description: The group's name it must have.
    type: str
  kind:
    description: C(file) (a regular file) or C(directory) (no content to compare).
    type: str
    default: file
    choices: [file, directory]
"""

EXAMPLES = r"""
- name: Read the drop-ins
  ansible.builtin.stat:
    path: "{{ item }}"
  loop: [/etc/sysctl.d/60-sparkops-memory.conf]
  register: __files

- name: Memory sysctls (drop-in), written only when it differs
  ansible.builtin.template:
    src: sysctl.conf.j2
    dest: /etc/sysctl.d/60-sparkops-memory.conf
    mode: "0644"
  when: __files | sparkops.cluster.file_differs('/etc/sysctl.d/60-sparkops-memory.conf', lookup('ansible.builtin.template', 'sysctl.conf.j2'), '0644')
"""

RETURN = r"""
_value:
  description: True when a write is due.
  type: bool
"""

import hashlib

from ansible.errors import AnsibleFilterError


def _stat_of(data, path):
    if isinstance(data, dict) and isinstance(data.get("files"), dict):  # sparkops.cluster.file_facts, by path
        if path not in data["files"]:
            raise AnsibleFilterError("file_differs: file_facts read no %s (it read %s)" % (path, ", ".join(data["files"])))
        return {"stat": data["files"][path]}
    if isinstance(data, dict) and "files" in data:  # ansible.builtin.find: its entries are what stat says
        found = [f for f in data["files"] if isinstance(f, dict) and f.get("path") == path]
        return {"stat": dict(found[0], exists=True) if found else {"exists": False}}
    if isinstance(data, dict) and "results" in data:
        data = data["results"]
    if isinstance(data, list):
        found = [r for r in data if isinstance(r, dict)
                 and (r.get("item") == path or (r.get("invocation") or {}).get("module_args", {}).get("path") == path)]
        if not found:
            raise AnsibleFilterError("file_differs: no stat result for %s among the %d given" % (path, len(data)))
        data = found[0]
    if not isinstance(data, dict):
        raise AnsibleFilterError("file_differs: give a registered stat result (or a loop of them), got %s"
                                 % type(data).__name__)
    return data


def _differs(data, path=None, content=None, mode=None, owner=None, group=None, kind="file"):
    if kind not in ("file", "directory"):
        raise AnsibleFilterError("file_differs: kind is file or directory, not %r" % (kind,))
    result = _stat_of(data, path)
    st = result.get("stat") or {}
    if result.get("failed") or result.get("skipped") or st.get("error") or not st.get("exists"):
        return True
    if not st.get("isreg" if kind == "file" else "isdir"):
        return True
    if content is not None:
        want = hashlib.sha1(str(content).encode("utf-8")).hexdigest()
        if st.get("checksum") != want:
            return True
    if mode is not None and str(st.get("mode")).lstrip("0") != str(mode).lstrip("0"):
        return True
    if owner is not None and st.get("pw_name") != owner:
        return True
    if group is not None and st.get("gr_name") != group:
        return True
    return False


class FilterModule:
    def filters(self):
        return {"file_differs": _differs}
