# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: timeline
type: aggregate
short_description: Every task's start and end on every host, as JSON lines, for a timeline of a run
description:
  - Writes one JSON line per task result to the file named by E(SPARKOPS_TIMELINE) - the play, the task, its
    role, the host, the status (ok, changed, failed, skipped, unreachable), and when the task started on the
    controller and when the host's result came back (seconds since the epoch, monotonic-corrected), so a cold
    start can be drawn phase by phase and node by node (issue #41's benchmark).
  - Without E(SPARKOPS_TIMELINE) it writes nothing. It changes no result and no output.
version_added: 0.4.0
requirements:
  - enabled in the configuration, e.g. C(callbacks_enabled = sparkops.cluster.timeline), and E(SPARKOPS_TIMELINE)
    set to a file path
"""

import json
import os
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "sparkops.cluster.timeline"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.path = os.environ.get("SPARKOPS_TIMELINE") or None
        self.play = None
        self.started = {}  # task uuid -> (wall time, monotonic time) it started on the controller
        # wall time of a monotonic reading: the timeline's times stay ordered if the clock moves
        self.origin = time.time() - time.monotonic()

    def _now(self):
        return self.origin + time.monotonic()

    def v2_playbook_on_play_start(self, play):
        self.play = play.get_name()

    def v2_playbook_on_task_start(self, task, is_conditional):
        self.started[task._uuid] = self._now()

    def v2_playbook_on_handler_task_start(self, task):
        self.started[task._uuid] = self._now()

    def _record(self, result, status):
        if not self.path:
            return
        task = result._task
        role = getattr(task, "_role", None)
        line = {"play": self.play, "task": task.get_name(), "role": role.get_name() if role else None,
                "action": task.action, "host": result._host.get_name(), "status": status,
                "start": round(self.started.get(task._uuid, self._now()), 3), "end": round(self._now(), 3)}
        with open(self.path, "a") as fh:
            fh.write(json.dumps(line, sort_keys=True) + "\n")

    def v2_runner_on_ok(self, result):
        self._record(result, "changed" if result._result.get("changed") else "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, "ignored" if ignore_errors else "failed")

    def v2_runner_on_skipped(self, result):
        self._record(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._record(result, "unreachable")
