# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin sparkops.cluster.engine_watch: calls the module once per `wait`
seconds and prints where the load is after each call, until ready, failed or timeout."""

from __future__ import annotations

import time

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

display = Display()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        try:
            timeout = int(args.get("timeout", 3600))
        except (TypeError, ValueError):
            return dict(result, failed=True, msg="timeout must be an integer (seconds), got %r" % args.get("timeout"))
        host = task_vars.get("inventory_hostname")
        start = time.monotonic()
        last = None
        while True:
            last = self._execute_module(module_name="sparkops.cluster.engine_watch", module_args=args,
                                        task_vars=task_vars)
            elapsed = int(time.monotonic() - start)
            if last.get("failed") or last.get("ready"):
                break
            nodes = last.get("nodes") or {}
            display.display("  [%s] engine load: %s (log moved %ss ago, process %s, %ss elapsed)%s"
                            % (host, last.get("summary"), last.get("log_age"), last.get("state"), elapsed,
                               "; per node: " + ", ".join("%s %s" % kv for kv in nodes.items()) if len(nodes) > 1
                               else ""))
            if elapsed >= timeout:
                last.update(failed=True, msg="the API did not come up within %ds (last progress: %s)"
                                             % (timeout, last.get("summary")))
                break
        last["elapsed"] = int(time.monotonic() - start)
        result.update(last)
        return result
