# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""perftest (`ib_write_bw`) output: the result table, failures, and rail summaries."""

from __future__ import annotations

import re

from ansible_collections.sparkops.cluster.plugins.module_utils._errors import ToolOutputError

_HEADER = re.compile(
    r"^#bytes\s+#iterations\s+BW peak\[(?P<unit>[A-Za-z/]+)\]\s+BW average\[(?P=unit)\]\s+MsgRate\[Mpps\]")
_ROW = re.compile(r"^(?P<bytes>\d+)\s+(?P<iters>\d+)\s+(?P<peak>[\d.]+)\s+(?P<avg>[\d.]+)\s+(?P<rate>[\d.]+)$")
# known failure lines, as perftest prints them
_FAILURES = (
    (re.compile(r"Couldn't connect to (?P<target>\S+)"), "connection refused",
     "the server side is not listening on {target}: start it first, or check the address, "
     "the port (-p) and that the rail is cabled to the same port on both nodes"),
    (re.compile(r"IB device (?P<dev>\S+) not found"), "device not found",
     "RDMA device {dev} does not exist on this node: see `ibdev2netdev`"),
    (re.compile(r"No IB devices found"), "no RDMA device", "no RDMA device on this node"),
    (re.compile(r"Unable to init the socket connection"), "socket connection failed",
     "the out-of-band TCP connection failed"),
    (re.compile(r"Couldn't get context for the device"), "device context failed",
     "the RDMA device cannot be opened (driver, permissions or MTU)"),
)
_NO_PEAK = "BW peak won't be measured"
_UNIT_TO_GBPS = {"Gb/sec": 1.0, "MB/sec": 8 * 2 ** 20 / 1e9, "MiB/sec": 8 * 2 ** 20 / 1e9}


def parse_bw(text):
    """Result of one ib_write_bw run: bytes, iterations, peak/avg Gb/s, message rate.

    peak_gbps is None when perftest did not measure it (duration mode prints 0.00).

    Raises ToolOutputError for a known failure (with the cause and a hint) or when no
    result row follows the header.
    """
    failure = diagnose(text)
    lines = [line.strip() for line in text.splitlines()]
    for idx, line in enumerate(lines):
        m = _HEADER.match(line)
        if not m:
            continue
        unit = m.group("unit")
        if unit not in _UNIT_TO_GBPS:
            raise ToolOutputError("ib_write_bw", "unknown bandwidth unit %s" % unit, line, idx + 1)
        for j in range(idx + 1, len(lines)):
            row = lines[j]
            if not row or not row[0].isdigit():
                # perftest prints notices between the header and the row (e.g. "Conflicting
                # CPU frequency values detected" without -F); the row starts with #bytes
                continue
            r = _ROW.match(row)
            if not r:
                raise ToolOutputError("ib_write_bw", "expected a result row after the header", row, j + 1)
            scale = _UNIT_TO_GBPS[unit]
            peak, average = float(r.group("peak")), float(r.group("avg"))
            # duration mode (-D) does not measure the peak and prints 0.00 for it
            # (perftest_parameters.c: noPeak); a peak below the average was not measured
            unmeasured = _NO_PEAK in text or (peak == 0 and average > 0)
            return {
                "bytes": int(r.group("bytes")),
                "iterations": int(r.group("iters")),
                "peak_gbps": None if unmeasured else round(peak * scale, 3),
                "average_gbps": round(average * scale, 3),
                "msg_rate_mpps": float(r.group("rate")),
                "unit": unit,
            }
        raise ToolOutputError("ib_write_bw", "result header without a result row", line, idx + 1)
    if failure:
        raise ToolOutputError("ib_write_bw", "%s: %s" % (failure["cause"], failure["hint"]), failure["line"])
    raise ToolOutputError("ib_write_bw", "no result table (#bytes #iterations BW peak ...) in the output")


def diagnose(text):
    """The first known failure line in the output, with its cause and a hint, or None."""
    for line in text.splitlines():
        for pattern, cause, hint in _FAILURES:
            m = pattern.search(line)
            if m:
                return {"cause": cause, "hint": hint.format(**m.groupdict()), "line": line.strip()}
    return None


def is_waiting(text):
    """True once a server has printed its 'Waiting for client to connect' banner."""
    return "Waiting for client to connect" in text


def aggregate(rails, line_rate_gbps, min_gbps=None, min_aggregate_gbps=None):
    """Sum rails measured in parallel and compare with thresholds.

    rails: list of dicts with at least name and average_gbps. Returns the aggregate and
    the list of failures (human-readable, naming the rail).
    """
    total = round(sum(r["average_gbps"] for r in rails), 3)
    failures = []
    for r in rails:
        r["line_rate_share"] = round(r["average_gbps"] / line_rate_gbps, 4) if line_rate_gbps else None
        if min_gbps is not None and r["average_gbps"] < min_gbps:
            failures.append("rail %s: %.2f Gb/s is below min_gbps %.2f" % (r["name"], r["average_gbps"], min_gbps))
    if min_aggregate_gbps is not None and total < min_aggregate_gbps:
        failures.append("aggregate %.2f Gb/s over %d rail(s) is below min_aggregate_gbps %.2f"
                        % (total, len(rails), min_aggregate_gbps))
    return {
        "aggregate_gbps": total,
        "line_rate_gbps": line_rate_gbps,
        "line_rate_share": round(total / line_rate_gbps, 4) if line_rate_gbps else None,
        "failures": failures,
    }


def command(device, port, size, qps, duration, server=None, ib_port=1, gid_index=None, rdma_cm=False):
    """argv of one ib_write_bw run (server when server is None)."""
    argv = ["ib_write_bw", "-d", device, "-i", str(ib_port), "-p", str(port), "-s", str(size),
            "-q", str(qps), "-D", str(duration), "--report_gbits", "-F"]
    if gid_index is not None:
        argv += ["-x", str(gid_index)]
    if rdma_cm:
        argv.append("-R")
    if server:
        argv.append(server)
    return argv
