# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin sparkops.cluster.engine_watch: calls the module once per `wait`
seconds and prints where the load is after each call, until ready, failed or timeout.

The hosts of one task watch together (the mp executor: every node runs `vllm serve`, each
watches its own log). They meet in a directory of the controller's run (one per task): the
host that watches the API (health_url) marks it ready there, and a host whose watch fails
leaves its message there. Every host reads it after each call, so a follower ends when the
head serves, and a fatal line on any node fails the head's watch at once, naming the node.
"""

from __future__ import annotations

import os
import time

from ansible import constants as C
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

display = Display()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def _meeting(self):
        path = os.path.join(C.DEFAULT_LOCAL_TMP, "sparkops-engine-watch-%s" % self._task._uuid)
        os.makedirs(path, exist_ok=True)
        return path

    @staticmethod
    def _read(path):
        try:
            with open(path, encoding="utf-8") as f:
                return f.read()
        except OSError:
            return None

    @staticmethod
    def _write(path, text):
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(path + ".tmp", path)

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        try:
            timeout = int(args.get("timeout", 3600))
        except (TypeError, ValueError):
            return dict(result, failed=True, msg="timeout must be an integer (seconds), got %r" % args.get("timeout"))
        try:
            wait = int(args.get("wait", 30))
        except (TypeError, ValueError):
            return dict(result, failed=True, msg="wait must be an integer (seconds), got %r" % args.get("wait"))
        host = task_vars.get("inventory_hostname")
        watches_api = bool(args.get("health_url"))
        if not watches_api:
            # a follower looks at the meeting every few seconds, and prints every `wait` seconds
            args["wait"] = max(1, min(wait, 5))
        shown = 0
        meeting = self._meeting()
        ready_mark = os.path.join(meeting, "ready")
        start = time.monotonic()
        last = None
        while True:
            last = self._execute_module(module_name="sparkops.cluster.engine_watch", module_args=args,
                                        task_vars=task_vars)
            # a wait on vLLM's notice counts across calls (the module keeps no state)
            for key in ("progress_mark", "progress_at"):
                if last.get(key) is not None:
                    args[key] = last[key]
            elapsed = int(time.monotonic() - start)
            if last.get("failed"):
                self._write(os.path.join(meeting, "failed-%s" % host), "%s: %s" % (host, last.get("msg")))
                break
            if last.get("ready"):
                self._write(ready_mark, host)
                break
            others = sorted(f for f in os.listdir(meeting) if f.startswith("failed-") and f != "failed-%s" % host)
            if others:
                why = self._read(os.path.join(meeting, others[0])) or others[0][len("failed-"):]
                if watches_api:
                    last.update(failed=True, msg="the load failed on another node: %s" % why)
                else:  # the head's watch fails and reports; this node's own log had nothing
                    last.update(ready=False, msg="stopped watching: %s" % why)
                break
            if not watches_api and os.path.exists(ready_mark):
                last.update(ready=True, msg="the API serves (%s)" % self._read(ready_mark))
                break
            if elapsed >= timeout:
                last.update(failed=True, msg="the API did not come up within %ds (last progress: %s)"
                                             % (timeout, last.get("summary")))
                break
            if watches_api or elapsed - shown >= wait:
                shown = elapsed
                nodes = last.get("nodes") or {}
                display.display("  [%s] engine load: %s (log moved %ss ago, process %s, %ss elapsed)%s"
                                % (host, last.get("summary"), last.get("log_age"), last.get("state"), elapsed,
                                   "; per node: " + ", ".join("%s %s" % kv for kv in nodes.items())
                                   if len(nodes) > 1 else ""))
        last["elapsed"] = int(time.monotonic() - start)
        result.update(last)
        return result
