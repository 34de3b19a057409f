# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A rails apply confirmed on the node: the parsers of what it reads (`ip -o -4 addr`,
`ip -o route get`, /proc/net/tcp and tcp6) and the sequence that decides between keeping
the new rails and restoring the previous ones. Pure Python: the module
sparkops.cluster.apply_confirmed gives it the node's operations.

The sequence, each step bounded by the window (netplan_confirm_timeout) that starts when
the safety timer is armed:
  1. arm the safety timer (it restores the previous rails if this program dies);
  2. read how the node reaches the controller (the SSH client of Ansible's session);
  3. run the apply;
  4. wait until every rail is up with its address and MTU;
  5. check that the route to the controller did not move (a rail route that takes the
     controller's traffic away from the management interface cuts Ansible off);
  6. wait until every confirm target answers a ping;
  7. wait for the controller's confirmation (a file holding this run's nonce): the proof
     that Ansible reaches the node with the new rails in place;
  8. disarm the timer. Any step that fails restores the previous rails at once (the
     timer stopped first, so the two never run together), naming the step.
The node's own checks thus never wait on the controller: it only has to reach the node
once within the window.
"""

from __future__ import annotations

import ipaddress
import re

from ansible_collections.sparkops.cluster.plugins.module_utils._errors import ToolOutputError
from ansible_collections.sparkops.cluster.plugins.module_utils._fabric import rail_state

# Seconds the safety timer fires after the window: the program, when alive, ends within the
# window (rolling back itself where needed), and stops the timer before any rollback
TIMER_MARGIN = 30
# Seconds each confirm target has to answer once the rails are up
TARGET_TIMEOUT = 30
# Seconds the rollback (the previous file restored, the apply command run again) may take
ROLLBACK_TIMEOUT = 120

_ADDR = re.compile(r"^\d+:\s+(?P<dev>[^\s@:]+)(?:@\S+)?\s+inet\s+(?P<address>[0-9.]+)/(?P<prefix>\d+)")
_ROUTE_WORD = re.compile(r"\b(dev|src|via)\s+(\S+)")


def parse_addresses(text):
    """{netdev: [IPv4 address, ...]} from `ip -o -4 addr show` (iproute2). Lines that are not
    an inet line are skipped; raises ToolOutputError when no line is."""
    out = {}
    lines = [line for line in text.splitlines() if line.strip()]
    for line in lines:
        m = _ADDR.match(line.strip())
        if m:
            out.setdefault(m.group("dev"), []).append(m.group("address"))
    if lines and not out:
        raise ToolOutputError("ip -o -4 addr show", "no 'N: DEV inet ADDRESS/PREFIX' line", lines[0], 1)
    return out


def parse_route(text):
    """{dev, via, src} of the first line of `ip -o route get ADDRESS` (None where the route
    has none of them). Raises ToolOutputError on output without a dev."""
    line = next((line for line in text.splitlines() if line.strip()), "")
    words = dict(_ROUTE_WORD.findall(line))
    if "dev" not in words:
        raise ToolOutputError("ip -o route get", "no 'dev DEVICE' in the route", line, 1)
    return {"dev": words.get("dev"), "via": words.get("via"), "src": words.get("src")}


def ssh_client(text):
    """The client's address of an SSH session, from sshd's SSH_CONNECTION ('CLIENT PORT SERVER
    PORT', as the session's environment holds it), or None when there is none (a connection
    that is not SSH). Raises ToolOutputError on text of another shape."""
    fields = text.split()
    if not fields:
        return None
    try:
        if len(fields) != 4:
            raise ValueError("not four fields")
        ipaddress.ip_address(fields[0])
        int(fields[1]), int(fields[3])
    except ValueError:
        raise ToolOutputError("SSH_CONNECTION", "not 'CLIENT_ADDRESS CLIENT_PORT SERVER_ADDRESS SERVER_PORT'", text.strip())
    return fields[0]


def live_facts(rails, sysfs, addresses):
    """The rails' state in the shape of Ansible's network facts, for _fabric.rail_state: sysfs
    {netdev: {operstate, mtu}} (None for a netdev that does not exist), addresses from
    parse_addresses()."""
    facts = {"interfaces": sorted(dev for dev, state in sysfs.items() if state is not None)}
    for rail in rails:
        state = sysfs.get(rail["netdev"])
        if state is None:
            continue
        found = addresses.get(rail["netdev"], [])
        facts[rail["netdev"].replace("-", "_").replace(".", "_")] = {
            "active": state.get("operstate") != "down", "mtu": state.get("mtu"),
            "ipv4": {"address": found[0]} if found else {},
            "ipv4_secondaries": [{"address": a} for a in found[1:]]}
    return facts


def rail_problems(host, rails, sysfs, addresses):
    """What is wrong with the rails now, in the words of the role's other checks."""
    return rail_state(host, rails, live_facts(rails, sysfs, addresses))["problems"]


class Outcome(Exception):
    """Ends the sequence: `step` is the step that failed (None: confirmed), `detail` why."""

    def __init__(self, step, detail):
        super().__init__(detail)
        self.step, self.detail = step, detail


def run(ops, targets, window, settle_timeout, clock, sleep, poll=0.5):
    """The sequence of the module docstring over `ops` (the node's operations: arm(seconds),
    controller() -> [addresses], route(address), apply(timeout) -> (rc, last line), rail_problems(),
    ping(address) -> bool, acked() -> bool, disarm() -> whether the timer had already
    rolled back, rollback(timeout) -> (rc, last line)).

    Returns {confirmed, rolled_back, by_timer, step, detail, seconds: {step: seconds from
    the arming}, clients}. `step` names what failed: apply, rails, route, targets, confirm
    (no confirmation from the controller in time), or None."""
    start = clock()
    deadline = start + window
    seconds = {}

    def mark(step):
        seconds[step] = round(clock() - start, 1)

    result = {"confirmed": False, "rolled_back": False, "by_timer": False, "step": None, "detail": None,
              "seconds": seconds, "clients": []}
    ops.arm(window + TIMER_MARGIN)  # raises: nothing applied yet
    mark("armed")
    try:
        before = {}
        for client in ops.controller():
            try:
                before[client] = ops.route(client)
            except (OSError, ValueError):
                continue  # no route to it now: nothing to compare after the apply
        result["clients"] = sorted(before)

        rc, line = ops.apply(max(1.0, deadline - clock()))
        mark("applied")
        if rc != 0:
            raise Outcome("apply", "the apply failed (rc=%s): %s" % (rc, line or "no output"))

        settle_end = min(deadline, clock() + settle_timeout)
        while True:
            problems = ops.rail_problems()
            if not problems:
                break
            if clock() >= settle_end:
                raise Outcome("rails", "the rails were not up with their addresses and MTU %ds after the apply: %s"
                              % (round(clock() - start - seconds["applied"]), "; ".join(problems)))
            sleep(poll)
        mark("rails")

        moved = []
        for client, was in sorted(before.items()):
            try:
                now = ops.route(client)
            except (OSError, ValueError) as exc:
                moved.append("%s: no route any more (%s)" % (client, exc))
                continue
            if now != was:
                moved.append("%s: was out of %s, now out of %s" % (client, _route_text(was), _route_text(now)))
        if moved:
            raise Outcome("route", "the route to the controller moved: %s" % "; ".join(moved))

        targets_end = min(deadline, clock() + TARGET_TIMEOUT)
        for target in targets:
            while not ops.ping(target):
                if clock() >= targets_end:
                    raise Outcome("targets", "%s no longer answered a ping (%ds after the apply)"
                                  % (target, round(clock() - start - seconds["applied"])))
                sleep(1.0)
        mark("checked")

        while not ops.acked():
            if clock() >= deadline:
                raise Outcome("confirm", "the controller did not reach the node within %ds of the apply; the "
                              "node's own checks had passed %.1fs after the apply" % (
                                  window, seconds["checked"] - seconds["applied"]))
            sleep(poll)
        mark("confirmed")
        result["by_timer"] = ops.disarm()
        if result["by_timer"]:  # the timer fired before the disarm: this program was too slow
            result.update(rolled_back=True, step="timer", detail="the safety timer fired (%ds) before the "
                          "confirmation was read" % (window + TIMER_MARGIN))
        else:
            result["confirmed"] = True
        return result
    except Outcome as outcome:
        result.update(step=outcome.step, detail=outcome.detail)
    result["by_timer"] = ops.disarm()
    result["rolled_back"] = True
    if not result["by_timer"]:
        rc, line = ops.rollback(ROLLBACK_TIMEOUT)
        if rc != 0:
            result["rolled_back"] = False
            result["detail"] += "; the rollback itself failed (rc=%s): %s" % (rc, line or "no output")
    mark("rolled_back")
    return result


def timeline(seconds):
    """The node's steps in words: 'applied 1.2s, rails up 2.0s, rolled back 2.4s after the timer was armed'."""
    words = (("applied", "applied"), ("rails", "rails up"), ("checked", "checks passed"), ("confirmed", "confirmed"),
             ("rolled_back", "rolled back"))
    done = ["%s %.1fs" % (word, seconds[key]) for key, word in words if key in seconds]
    return "%s after the timer was armed" % ", ".join(done) if done else ""


def _route_text(route):
    return "%s%s%s" % (route.get("dev"), " through %s" % route["via"] if route.get("via") else "",
                       " from %s" % route["src"] if route.get("src") else "")
