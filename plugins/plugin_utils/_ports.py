# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The port table (data/ports.yml): what each role opens, where and when. The firewall's
rules come from it (firewall_plan), and so does the table of docs/architecture.md
(markdown). Pure Python, on the controller."""

from __future__ import annotations

import ipaddress
import os
import re

NETWORKS = ("management", "rails", "loopback")
NODES = ("head", "all")
CONDITIONS = ("always", "ray_executor", "mp_executor", "copy_ssh", "copy_rsyncd", "validate_fabric", "monitoring",
              "monitoring_public")
_KEYS = ("id", "owner", "port", "network", "nodes", "when", "why")
_PORT = re.compile(r"^(?:any|\d{1,5}(?:-\d{1,5})?)$")
TABLE = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "data", "ports.yml"))


class PortTableError(ValueError):
    """data/ports.yml is malformed: the message names the row and the field."""


def check(rows):
    """The rows, each checked; PortTableError names the first bad one."""
    if not isinstance(rows, list) or not rows:
        raise PortTableError("ports.yml must be a non-empty list of rows")
    seen = set()
    for i, row in enumerate(rows):
        where = "ports.yml row %d (%s)" % (i, row.get("id") if isinstance(row, dict) else row)
        if not isinstance(row, dict):
            raise PortTableError("%s is not a mapping" % where)
        missing = [k for k in _KEYS if row.get(k) in (None, "")]
        if missing:
            raise PortTableError("%s lacks %s" % (where, ", ".join(missing)))
        if row["id"] in seen:
            raise PortTableError("%s: id used twice" % where)
        seen.add(row["id"])
        if not _PORT.match(str(row["port"])):
            raise PortTableError("%s: port must be a number, a range A-B or any, got %r" % (where, row["port"]))
        for key, allowed in (("network", NETWORKS), ("nodes", NODES), ("when", CONDITIONS)):
            if row[key] not in allowed:
                raise PortTableError("%s: %s must be one of %s, got %r" % (where, key, ", ".join(allowed), row[key]))
    return rows


def is_loopback(host):
    """Whether a bind address is loopback only (127.0.0.0/8, ::1, localhost), by its address."""
    text = str(host or "").strip().strip("[]")
    if text == "localhost":
        return True
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False


def _port(row, values):
    """The row's port as the deployment sets it: the value of its variable when set, else the
    table's (a range or 'any' stays as written)."""
    value = values.get(row.get("var")) if row.get("var") else None
    if isinstance(value, bool) or value in (None, ""):
        return row["port"]
    try:
        return int(value)
    except (TypeError, ValueError):
        return row["port"]


def management_ports(rows, values, conditions, head):
    """The TCP ports the management network may reach on a node (the head or not): the rows of
    the management network whose condition holds, with their variables' values. Sorted."""
    out = set()
    for row in rows:
        if row["network"] != "management" or not conditions.get(row["when"], row["when"] == "always"):
            continue
        if row["nodes"] == "head" and not head:
            continue
        port = _port(row, values)
        if not isinstance(port, int) or not 1 <= port <= 65535:
            raise PortTableError("port of %s (%s) must be a TCP port, got %r" % (row["id"], row.get("var"), port))
        out.add(port)
    return sorted(out)


def markdown(rows):
    """The table as docs/architecture.md shows it."""
    lines = ["| owner | port | network | nodes | when | why |", "|---|---|---|---|---|---|"]
    for row in rows:
        port = "%s/tcp" % row["port"] if str(row["port"]) != "any" else "any/tcp"
        if row.get("var") and row["var"] != "ansible_port":
            port = "`%s` (%s)" % (row["var"], port)
        lines.append("| %s | %s | %s | %s | %s | %s |" % (
            row["owner"], port, row["network"], "head" if row["nodes"] == "head" else "every node",
            row["when"].replace("_", " "), " ".join(str(row["why"]).split())))
    return "\n".join(lines)
