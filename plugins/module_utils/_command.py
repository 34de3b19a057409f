# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running the hardware tools from a module: C locale, clear failure."""

from __future__ import annotations


def run_tool(module, argv):
    """stdout of argv; on a non-zero exit, fail_json naming the command, rc and output."""
    rc, out, err = module.run_command(argv, environ_update={"LC_ALL": "C"})
    if rc != 0:
        module.fail_json(msg="%s failed (rc=%d): %s" % (" ".join(argv), rc, (err or out).strip()),
                         rc=rc, stdout=out, stderr=err)
    return out
