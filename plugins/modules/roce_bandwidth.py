#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: roce_bandwidth
short_description: Measure RDMA write bandwidth between two nodes with ib_write_bw
description:
  - Runs perftest's C(ib_write_bw) on one or more rails at once, as the server side
    (O(role=server)) on one node and as the client side (O(role=client)) on the
    other. Rails run in parallel, so two rails give the two-rail aggregate of one
    200G ConnectX-7 port (about 106 Gb/s per rail and 212 aggregate are reported on DGX Spark).
  - Returns per rail the average and peak Gb/s and the message rate, the aggregate,
    and the share of the link's line rate, and fails below O(min_gbps) or
    O(min_aggregate_gbps).
  - The server side waits at most O(timeout) seconds for its client and never leaves
    an C(ib_write_bw) process behind. The client side retries a refused connection
    for O(connect_timeout) seconds, so the server may start a moment later.
  - Run the server with C(async) and the client normally; the
    C(playbooks/validate-fabric.yml) pairs every node with the next one in a ring.
  - Only measures; never reports C(changed).
version_added: 0.1.0
author: sparkops.cluster developers (@sparkops)
extends_documentation_fragment:
  - sparkops.cluster.attributes
  - sparkops.cluster.attributes.READ_ONLY
options:
  role:
    description: Which side of the test this node runs.
    type: str
    choices: [server, client]
    required: true
  rails:
    description: Rails to test in parallel.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Label of the rail in the results.
        type: str
        required: true
      device:
        description: RDMA device (C(-d)), for example C(rocep1s0f1).
        type: str
        required: true
      server_address:
        description: Address of the server on this rail (client side only).
        type: str
      port:
        description: TCP port of the out-of-band exchange (C(-p)); give each parallel rail its own.
        type: int
        required: true
      ib_port:
        description: RDMA port of the device (C(-i)).
        type: int
        default: 1
      gid_index:
        description: GID index (C(-x)); leave unset to let perftest choose (KF-17, NVIDIA/nccl#1333).
        type: int
  size:
    description: Message size in bytes (C(-s)).
    type: int
    default: 8388608
  qps:
    description: Queue pairs per rail (C(-q)).
    type: int
    default: 4
  duration:
    description: Seconds to run (C(-D)).
    type: int
    default: 10
  rdma_cm:
    description: Connect queue pairs with rdma_cm (C(-R)).
    type: bool
    default: false
  min_gbps:
    description: Fail when a rail averages less than this (Gb/s).
    type: float
  min_aggregate_gbps:
    description: Fail when the rails together average less than this (Gb/s).
    type: float
  line_rate_gbps:
    description: Line rate of the link the rails share, for RV(line_rate_share) (one ConnectX-7 port is 200).
    type: float
    default: 200
  timeout:
    description:
      - Seconds this side may run in all before its C(ib_write_bw) process group is killed and
        the rail fails, naming what it last printed. Must be above 0.
      - Default, 120 on the server side (it waits for its client), and O(duration) +
        O(connect_timeout) + 30 on the client side.
    type: int
  connect_timeout:
    description: Client side, seconds to keep retrying a refused connection. Must be above 0.
    type: int
    default: 30
"""

EXAMPLES = r"""
- name: Server side on the peer (both rails)
  sparkops.cluster.roce_bandwidth:
    role: server
    rails:
      - {name: rail1, device: rocep1s0f1, port: 18515}
      - {name: rail2, device: roceP2p1s0f1, port: 18516}
  async: 180
  poll: 0
  register: server_job
  delegate_to: spark-beta

- name: Client side here, two-rail aggregate
  sparkops.cluster.roce_bandwidth:
    role: client
    rails:
      - {name: rail1, device: rocep1s0f1, port: 18515, server_address: 192.168.100.11}
      - {name: rail2, device: roceP2p1s0f1, port: 18516, server_address: 192.168.101.11}
    min_gbps: 90
    min_aggregate_gbps: 180
"""

RETURN = r"""
rails:
  description: One result per rail.
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: "Rail label.", type: str, returned: always, sample: rail1}
    device: {description: "RDMA device.", type: str, returned: always, sample: rocep1s0f1}
    average_gbps: {description: "Average bandwidth in Gb/s.", type: float, returned: always, sample: 106.1}
    peak_gbps:
      description: Peak bandwidth in Gb/s, or null where perftest did not measure it (it never does with C(-D), which this module passes).
      type: float
      returned: always
      sample: null
    msg_rate_mpps: {description: "Message rate in millions of messages per second.", type: float, returned: always, sample: 0.0016}
    line_rate_share: {description: "average_gbps / line_rate_gbps.", type: float, returned: always, sample: 0.53}
    command: {description: "The ib_write_bw command line.", type: list, elements: str, returned: always}
aggregate_gbps:
  description: Sum of the rails' averages (they run at the same time).
  returned: always
  type: float
  sample: 212.0
line_rate_gbps:
  description: The line rate used for the shares.
  returned: always
  type: float
  sample: 200
line_rate_share:
  description: aggregate_gbps / line_rate_gbps.
  returned: always
  type: float
  sample: 1.06
failures:
  description: Threshold failures, each naming the rail.
  returned: always
  type: list
  elements: str
  sample: []
"""

import threading
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sparkops.cluster.plugins.module_utils import _command, _perftest
from ansible_collections.sparkops.cluster.plugins.module_utils._errors import ToolOutputError


def run_side(argv, limit, retry_refused_for, results, index):
    """Run one rail's ib_write_bw for at most `limit` seconds in all (its process group
    killed past it, so no process outlives the limit); the client retries a refused
    connection for a while. results[index] = (rc, output, timed_out)."""
    started = time.monotonic()
    deadline = started + retry_refused_for
    out = ""
    while True:
        left = limit - (time.monotonic() - started)
        if left <= 0:
            results[index] = (None, out, True)
            return
        try:
            rc, stdout, stderr = _command.run(argv, left)
        except _command.CommandTimeout as exc:
            results[index] = (None, exc.output, True)
            return
        except OSError as exc:
            results[index] = (None, "cannot run %s: %s" % (argv[0], exc), False)
            return
        out = stdout + stderr
        failure = _perftest.diagnose(out) if rc != 0 else None
        if failure and failure["cause"] == "connection refused" and time.monotonic() < deadline:
            time.sleep(1)
            continue
        results[index] = (rc, out, False)
        return


def timeout_reason(role, rail, out):
    """Why a side ran past its limit, from what it printed."""
    if role == "server":
        if not out.strip() or _perftest.is_waiting(out) and "remote address" not in out:
            return "no client connected (start the client side; check its server_address and port)"
        if "remote address" in out:
            return "a client connected but the run did not finish; last line: %s" % _command.last_line(out)
        return "the run did not finish; last line: %s" % _command.last_line(out)
    if not out.strip():
        return "no answer from the server at %s:%d (is the server side started, and the rail cabled?)" % (
            rail["server_address"], rail["port"])
    return "connected to %s:%d but the run did not finish; last line: %s" % (
        rail["server_address"], rail["port"], _command.last_line(out))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            role=dict(type="str", choices=["server", "client"], required=True),
            rails=dict(type="list", elements="dict", required=True, options=dict(
                name=dict(type="str", required=True),
                device=dict(type="str", required=True),
                server_address=dict(type="str"),
                port=dict(type="int", required=True),
                ib_port=dict(type="int", default=1),
                gid_index=dict(type="int"),
            )),
            size=dict(type="int", default=8388608),
            qps=dict(type="int", default=4),
            duration=dict(type="int", default=10),
            rdma_cm=dict(type="bool", default=False),
            min_gbps=dict(type="float"),
            min_aggregate_gbps=dict(type="float"),
            line_rate_gbps=dict(type="float", default=200),
            timeout=dict(type="int"),
            connect_timeout=dict(type="int", default=30),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not p["rails"]:
        module.fail_json(msg="rails is empty: give at least one {name, device, port}")
    ports = [r["port"] for r in p["rails"]]
    if len(set(ports)) != len(ports):
        module.fail_json(msg="rails: each rail needs its own port (got %s)" % ports)
    if p["role"] == "client":
        missing = [r["name"] for r in p["rails"] if not r["server_address"]]
        if missing:
            module.fail_json(msg="rails: server_address is required on the client side (missing for %s)"
                                 % ", ".join(missing))
    _command.require_positive(module, "duration", "qps", "size", "timeout", "connect_timeout")
    tool = module.get_bin_path("ib_write_bw", required=True)

    argvs = []
    for r in p["rails"]:
        argv = _perftest.command(r["device"], r["port"], p["size"], p["qps"], p["duration"],
                                 server=r["server_address"] if p["role"] == "client" else None,
                                 ib_port=r["ib_port"], gid_index=r["gid_index"], rdma_cm=p["rdma_cm"])
        argv[0] = tool
        argvs.append(argv)

    server = p["role"] == "server"
    limit = p["timeout"] or (120 if server else p["duration"] + p["connect_timeout"] + 30)
    outcomes = [None] * len(argvs)
    _command.guard()  # the sides run in threads: a stopped module still kills them
    threads = [threading.Thread(target=run_side, args=(argv, limit, 0 if server else p["connect_timeout"], outcomes, i))
               for i, argv in enumerate(argvs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    rails, errors = [], []
    for r, argv, (rc, out, timed_out) in zip(p["rails"], argvs, outcomes):
        if timed_out:
            errors.append("rail %s (%s, %s side on port %d): timed out after %ds (killed): %s" % (
                r["name"], r["device"], p["role"], r["port"], limit, timeout_reason(p["role"], r, out)))
            continue
        try:
            measured = _perftest.parse_bw(out)
        except ToolOutputError as exc:
            last = [line.strip() for line in out.splitlines() if line.strip()][-1:]
            errors.append("rail %s (%s, %s side%s): %s%s" % (
                r["name"], r["device"], p["role"],
                " to %s:%d" % (r["server_address"], r["port"]) if r["server_address"] else " on port %d" % r["port"],
                exc, " (ib_write_bw exited %d; last line: %s)" % (rc, last[0] if last else "none") if rc else ""))
            continue
        measured.update(name=r["name"], device=r["device"], command=argv, rc=rc)
        rails.append(measured)
    if errors:
        module.fail_json(msg="; ".join(errors), rails=rails, outputs=[o[1] for o in outcomes])
    summary = _perftest.aggregate(rails, p["line_rate_gbps"], p["min_gbps"], p["min_aggregate_gbps"])
    if summary["failures"]:
        module.fail_json(msg="RoCE bandwidth below threshold: " + "; ".join(summary["failures"]),
                         rails=rails, **summary)
    module.exit_json(changed=False, rails=rails, **summary)


if __name__ == "__main__":
    main()
