#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: file_facts
short_description: Several files' state in one call - type, mode, owner, group and SHA-1
description:
  - Reads every path of O(paths) (not following a last symlink) and returns, per path, whether it exists, its type,
    mode, owner and group names, size and, for a regular file, its SHA-1 (what M(ansible.builtin.copy) compares).
  - One call for what a loop of M(ansible.builtin.stat) reads in as many round trips. The roles read their drop-ins
    with it and write (M(ansible.builtin.template), M(ansible.builtin.copy)) only where the
    P(sparkops.cluster.file_differs#filter) filter says one differs.
  - A path that cannot be read (a permission, an I/O error) is reported with C(error), never failing the module.
version_added: 0.2.0
author: sparkops.cluster developers (@sparkops)
extends_documentation_fragment:
  - sparkops.cluster.attributes
  - sparkops.cluster.attributes.READ_ONLY
options:
  paths:
    description: Absolute paths.
    type: list
    elements: path
    required: true
  checksum:
    description: Compute the SHA-1 of regular files (read whole; meant for configuration files, not weights).
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Read the role's drop-ins
  sparkops.cluster.file_facts:
    paths: [/etc/sysctl.d/60-sparkops-memory.conf, /etc/security/limits.d/60-sparkops-memlock.conf]
  register: __files

- name: Write one only where it differs
  ansible.builtin.template:
    src: sysctl.conf.j2
    dest: /etc/sysctl.d/60-sparkops-memory.conf
    mode: "0644"
  when: >-
    __files | sparkops.cluster.file_differs('/etc/sysctl.d/60-sparkops-memory.conf',
    lookup('ansible.builtin.template', 'sysctl.conf.j2'), '0644', 'root', 'root')
"""

RETURN = r"""
files:
  description: One entry per path of O(paths), by path.
  returned: always
  type: dict
  sample:
    /etc/sysctl.d/60-sparkops-memory.conf:
      exists: true
      isreg: true
      isdir: false
      islnk: false
      mode: "0644"
      pw_name: root
      gr_name: root
      size: 120
      checksum: 2aae6c35c94fcfb415dbe95f408b9ce91ee846ed
"""

import grp
import hashlib
import os
import pwd
import stat

from ansible.module_utils.basic import AnsibleModule


def _name(lookup, ident):
    try:
        return lookup(ident)[0]
    except KeyError:
        return str(ident)


def read(path, checksum=True):
    """The state of one path, as the module returns it."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return {"exists": False}
    except OSError as exc:
        return {"exists": None, "error": "%s: %s" % (path, exc.strerror or exc)}
    out = {"exists": True, "isreg": stat.S_ISREG(st.st_mode), "isdir": stat.S_ISDIR(st.st_mode),
           "islnk": stat.S_ISLNK(st.st_mode), "mode": "%04o" % stat.S_IMODE(st.st_mode),
           "pw_name": _name(pwd.getpwuid, st.st_uid), "gr_name": _name(grp.getgrgid, st.st_gid), "size": st.st_size}
    if checksum and out["isreg"]:
        digest = hashlib.sha1()
        try:
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
            out["checksum"] = digest.hexdigest()
        except OSError as exc:
            out["error"] = "%s: %s" % (path, exc.strerror or exc)
    return out


def main():
    module = AnsibleModule(
        argument_spec=dict(
            paths=dict(type="list", elements="path", required=True),
            checksum=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    bad = [p for p in module.params["paths"] if not os.path.isabs(p)]
    if bad:
        module.fail_json(msg="paths must be absolute: %s" % ", ".join(bad))
    module.exit_json(changed=False, files={p: read(p, module.params["checksum"]) for p in module.params["paths"]})


if __name__ == "__main__":
    main()
