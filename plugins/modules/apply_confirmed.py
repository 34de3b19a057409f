#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: apply_confirmed
short_description: Apply a change that can cut the node off, keep it only when confirmed on the node
description:
  - Applies a change that can cut the node off from the controller or its peers (the RoCE rails'
    netplan, a host firewall) and decides on the node itself, within O(window) seconds, whether
    it stays. Like C(netplan try), whose confirmation is local, nothing here waits on the
    controller's speed but one contact.
  - "In order, each step bounded by the window, which starts when the safety timer is armed: (1) arms a systemd
    timer that restores the previous state O(window) + 30 seconds later, in case this program dies
    (C(systemd-run --on-active), accurate to the second); (2) reads how the node reaches the controller
    (C(ip route get) to the client of O(ssh_connection)); (3) runs O(apply_command); (4) waits, at most
    O(settle_timeout) seconds, until every rail is up with its address and MTU; (5) checks that the routes to the
    controller did not move (a rail route that takes the controller's traffic away from the management interface
    cuts Ansible off); (6) waits, at most 30 seconds, until every confirm target answers a ping; (7) waits until
    O(ack_file) holds O(nonce), the controller's confirmation that it reaches the node with the change in place;
    then stops the timer."
  - Any step that fails stops the timer and runs O(rollback_command) at once, and the module
    fails naming the step, what it measured and the fix. A node that Ansible cannot reach with
    the change is thus rolled back at the end of the window at the latest.
  - Meant to run in the background (C(async), C(poll=0)) so that an apply that cuts the
    connection is waited out; the controller then writes the confirmation and reads the result
    (C(async_status)). The roles P(sparkops.cluster.netplan#role) (the rails) and
    P(sparkops.cluster.firewall#role) (the host firewall) do so.
version_added: 0.2.0
author: sparkops.cluster developers (@sparkops)
requirements:
  - systemd (C(systemd-run), C(systemctl)), iproute2 C(ip), iputils C(ping); root.
extends_documentation_fragment:
  - sparkops.cluster.attributes
attributes:
  check_mode:
    support: full
    details: Reports that it would apply, arms no timer and runs nothing.
  diff_mode:
    support: none
  idempotent:
    support: none
    details: Applies every time it runs; the role runs it only when the rails file or a live rail differs.
options:
  apply_command:
    description: The command that makes the change take effect (split as a shell would, run without a shell).
    type: str
    required: true
  rollback_command:
    description:
      - Path of the program that restores and applies the previous state and writes the time to O(stamp).
        The timer runs it; so does this module when a step fails.
    type: path
    required: true
  rails:
    description: The rails of this node as they must be after the apply (none for a change that leaves them).
    type: list
    elements: dict
    default: []
    suboptions:
      name: {description: "Rail name.", type: str, required: true}
      netdev: {description: "The rail's interface.", type: str, required: true}
      address: {description: "The rail's IPv4 address.", type: str, required: true}
      subnet: {description: "The rail's subnet (CIDR), named in the messages.", type: str}
      mtu: {description: "The rail's MTU.", type: int, required: true}
  confirm_targets:
    description: Addresses that must answer a ping once the rails are up.
    type: list
    elements: str
    default: []
  window:
    description: Seconds from the arming of the timer within which every step, the controller's confirmation included, must end.
    type: int
    required: true
  settle_timeout:
    description: Seconds the rails have, after the apply, to be up with their addresses and MTU.
    type: int
    default: 60
  ssh_connection:
    description:
      - The value of C(SSH_CONNECTION) in Ansible's own SSH session on the node (C(CLIENT PORT SERVER PORT), as
        sshd sets it; read without C(become), which resets the environment). The route to its client, the controller
        as the node sees it, must not move. Empty (a connection that is not SSH) checks no route.
    type: str
    default: ""
  ack_file:
    description: The file the controller writes O(nonce) into once it reaches the node after the apply.
    type: path
    required: true
  nonce:
    description: This run's confirmation value (a confirmation of an earlier run does not count).
    type: str
    required: true
  unit:
    description: Name of the transient systemd unit of the timer.
    type: str
    default: sparkops-netplan-rollback
  stamp:
    description: The file O(rollback_command) writes when it ran; removed when the timer is armed.
    type: path
    default: /run/sparkops-netplan-rolled-back
  file:
    description: What is applied, named in the messages.
    type: str
    default: the change
  host:
    description: This node's name in the messages. Default, the system's host name.
    type: str
  previous:
    description: What the rollback restores, named in the messages.
    type: str
    default: state
  fix:
    description:
      - The fix named in the failure, by step (apply, rails, route, targets, confirm, timer), instead of the
        module's generic one; the caller knows which of its variables to name.
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Apply the rails in the background, confirmed on the node
  sparkops.cluster.apply_confirmed:
    apply_command: netplan apply
    rollback_command: /usr/local/sbin/sparkops-netplan-rollback
    rails:
      - {name: rail1, netdev: enp1s0f1np1, address: 192.168.100.10, subnet: 192.168.100.0/24, mtu: 9000}
    confirm_targets: [10.0.0.1]
    window: 120
    ssh_connection: "{{ my_session.stdout }}"  # printenv SSH_CONNECTION, without become
    ack_file: /run/sparkops-netplan-confirm
    nonce: "{{ my_nonce }}"
    previous: rails configuration
  async: 300
  poll: 0
  register: apply_job

- name: Confirm from the controller (proves the node is reached with the new rails)
  ansible.builtin.command:
    argv: [sh, -c, 'printf %s "$1" > "$2"', sh, "{{ my_nonce }}", /run/sparkops-netplan-confirm]
  changed_when: false

- name: Read the result
  ansible.builtin.async_status:
    jid: "{{ apply_job.ansible_job_id }}"
  register: applied
  until: applied.finished
  retries: 60
  delay: 2
"""

RETURN = r"""
confirmed:
  description: The change stays (every step passed, the timer stopped).
  returned: always
  type: bool
  sample: true
rolled_back:
  description: The previous state was restored and applied (by this module or by the timer).
  returned: always
  type: bool
  sample: false
by_timer:
  description: The safety timer had already rolled back when the module stopped it.
  returned: always
  type: bool
  sample: false
step:
  description: The step that failed (apply, rails, route, targets, confirm, timer), or null.
  returned: always
  type: str
  sample: null
detail:
  description: What failed, with what was measured.
  returned: always
  type: str
  sample: null
seconds:
  description: Seconds from the arming of the timer at which each step ended (armed, applied, rails, checked, confirmed, rolled_back).
  returned: always
  type: dict
  sample: {armed: 0.1, applied: 2.3, rails: 3.1, checked: 3.2, confirmed: 9.8}
clients:
  description: The controller's addresses whose routes were checked.
  returned: always
  type: list
  elements: str
  sample: [172.28.10.1]
"""

import os
import shlex
import socket
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sparkops.cluster.plugins.module_utils import _command, _confirm
from ansible_collections.sparkops.cluster.plugins.module_utils._errors import ToolOutputError

# Seconds each short program (ip, ping, systemctl) may take
SHORT = 30

# What to do when a step fails, unless the caller says better (fix)
_FIX = {
    "apply": "See the node's journal for the error.",
    "rails": "Check the rails' cables and ports (`networkctl status`, `ip link`).",
    "route": "The change must leave the route from the node to the controller on its management interface.",
    "targets": "Check what the change does to the path to these addresses.",
    "confirm": "Check that the change leaves the controller's path to the node alone; for a controller this slow or "
               "far, give a longer window.",
    "timer": "The node is too slow for the window: give a longer one.",
}


class NodeOps:
    """The node's side of _confirm.run()."""

    def __init__(self, module):
        self.m = module
        self.p = module.params

    def _run(self, argv, timeout=SHORT):
        try:
            rc, out, err = _command.run(argv, timeout)
        except _command.CommandTimeout as exc:
            return 124, str(exc)
        except OSError as exc:
            return 127, "cannot run %s: %s" % (argv[0], exc)
        return rc, _command.last_line(err or out)

    def _read(self, argv):
        try:
            rc, out, err = _command.run(argv, SHORT)
        except (_command.CommandTimeout, OSError) as exc:
            raise OSError(str(exc))
        if rc != 0:
            raise OSError("%s failed (rc=%d): %s" % (" ".join(argv), rc, _command.last_line(err or out)))
        return out

    def arm(self, seconds):
        unit = self.p["unit"]
        self._run(["systemctl", "stop", unit + ".timer", unit + ".service"])
        self._run(["systemctl", "reset-failed", unit + ".timer", unit + ".service"])
        if os.path.lexists(self.p["stamp"]):
            os.unlink(self.p["stamp"])
        rc, line = self._run(["systemd-run", "--unit", unit, "--on-active=%ds" % seconds,
                              "--timer-property=AccuracySec=1s", self.p["rollback_command"]])
        if rc != 0:
            self.m.fail_json(msg="%s: could not arm the rollback timer, nothing was applied: systemd-run failed "
                             "(rc=%s): %s" % (self.host, rc, line or "no output"), confirmed=False, rolled_back=False)

    def controller(self):
        client = _confirm.ssh_client(self.p["ssh_connection"])
        return [client] if client else []

    def route(self, address):
        return _confirm.parse_route(self._read(["ip", "-o", "route", "get", address]))

    def apply(self, timeout):
        return self._run(shlex.split(self.p["apply_command"]), timeout)

    def rail_problems(self):
        sysfs = {}
        for rail in self.p["rails"]:
            base = os.path.join("/sys/class/net", rail["netdev"])
            try:
                with open(os.path.join(base, "operstate")) as f:
                    operstate = f.read().strip()
                with open(os.path.join(base, "mtu")) as f:
                    mtu = int(f.read().strip())
            except (OSError, ValueError):
                sysfs[rail["netdev"]] = None
                continue
            sysfs[rail["netdev"]] = {"operstate": operstate, "mtu": mtu}
        try:
            addresses = _confirm.parse_addresses(self._read(["ip", "-o", "-4", "addr", "show"]))
        except (OSError, ToolOutputError) as exc:
            return ["%s: cannot read the addresses: %s" % (self.host, exc)]
        return _confirm.rail_problems(self.host, self.p["rails"], sysfs, addresses)

    def ping(self, address):
        return self._run(["ping", "-n", "-c", "1", "-W", "2", address])[0] == 0

    def acked(self):
        try:
            with open(self.p["ack_file"], "rb") as f:
                return _command.decode(f.read()).strip() == self.p["nonce"]
        except OSError:
            return False

    def disarm(self):
        unit = self.p["unit"]
        self._run(["systemctl", "stop", unit + ".timer"])
        end = time.monotonic() + _confirm.ROLLBACK_TIMEOUT
        while time.monotonic() < end and self._run(["systemctl", "-q", "is-active", unit + ".service"])[0] == 0:
            time.sleep(1)
        return os.path.exists(self.p["stamp"])

    def rollback(self, timeout):
        return self._run([self.p["rollback_command"]], timeout)

    @property
    def host(self):
        return self.p["host"] or socket.gethostname()


def main():
    module = AnsibleModule(
        argument_spec=dict(
            apply_command=dict(type="str", required=True),
            rollback_command=dict(type="path", required=True),
            rails=dict(type="list", elements="dict", options=dict(
                name=dict(type="str", required=True), netdev=dict(type="str", required=True),
                address=dict(type="str", required=True), subnet=dict(type="str"), mtu=dict(type="int", required=True)),
                default=[]),
            confirm_targets=dict(type="list", elements="str", default=[]),
            window=dict(type="int", required=True),
            settle_timeout=dict(type="int", default=60),
            ssh_connection=dict(type="str", default=""),
            ack_file=dict(type="path", required=True),
            nonce=dict(type="str", required=True, no_log=False),
            unit=dict(type="str", default="sparkops-netplan-rollback"),
            stamp=dict(type="path", default="/run/sparkops-netplan-rolled-back"),
            file=dict(type="str", default="the change"),
            host=dict(type="str"),
            previous=dict(type="str", default="state"),
            fix=dict(type="dict", default={}),
        ),
        supports_check_mode=True,
    )
    p = module.params
    _command.require_positive(module, "window", "settle_timeout")
    try:
        argv = shlex.split(p["apply_command"])
    except ValueError as exc:
        argv, why = [], str(exc)
    else:
        why = "it is empty"
    if not argv:
        module.fail_json(msg="apply_command %r cannot be run: %s" % (p["apply_command"], why))
    try:
        _confirm.ssh_client(p["ssh_connection"])
    except ToolOutputError as exc:
        module.fail_json(msg="ssh_connection: %s" % exc)
    if not p["nonce"].strip():
        module.fail_json(msg="nonce must not be empty: a confirmation must be this run's")
    ops = NodeOps(module)
    if module.check_mode:
        module.exit_json(changed=True, confirmed=False, rolled_back=False, by_timer=False, step=None, detail=None,
                         seconds={}, clients=[], msg="would apply %s behind a %ds rollback timer" % (p["file"], p["window"]))
    result = _confirm.run(ops, p["confirm_targets"], p["window"], p["settle_timeout"], time.monotonic, time.sleep)
    if result["confirmed"]:
        module.exit_json(changed=True, **result)
    if result["rolled_back"]:
        restored = "the previous %s was restored and applied %s" % (
            p["previous"], "by the safety timer" if result["by_timer"] else "by the node")
    else:
        restored = "and the previous %s could NOT be restored: fix the node by hand" % p["previous"]
    module.fail_json(msg="%s: after applying %s, %s: %s (on the node: %s). %s" % (
        ops.host, p["file"], result["detail"], restored, _confirm.timeline(result["seconds"]),
        dict(_FIX, **p["fix"]).get(result["step"], "")), changed=True, **result)


if __name__ == "__main__":
    main()
