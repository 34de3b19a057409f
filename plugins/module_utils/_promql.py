# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prometheus' HTTP API answers, read: the matrix of a range query (GET /api/v1/query_range),
its error named as Prometheus names it. Pure: the bytes in, the series out."""

from __future__ import annotations

import json
import math

from ansible_collections.sparkops.cluster.plugins.module_utils._errors import ToolOutputError

TOOL = "Prometheus' query_range"


def _number(text):
    """A sample's value as Prometheus writes it (a string: "1.5", "NaN", "+Inf"): a float, or
    None where JSON cannot carry it."""
    value = float(text)
    return None if math.isnan(value) or math.isinf(value) else value


def range_series(body):
    """[{metric: {label: value}, points: [[unix seconds, value or None], ...]}] of a
    query_range answer (bytes or text). Raises ToolOutputError naming what is wrong: not JSON,
    Prometheus' own error (errorType: error), or another shape than a matrix."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        doc = json.loads(body)
    except ValueError:
        raise ToolOutputError(TOOL, "not JSON", str(body)[:200])
    if not isinstance(doc, dict):
        raise ToolOutputError(TOOL, "not a JSON object", str(body)[:200])
    if doc.get("status") != "success":
        raise ToolOutputError(TOOL, "Prometheus answered %s: %s" % (doc.get("errorType") or doc.get("status"),
                                                                    doc.get("error") or "no error given"))
    data = doc.get("data")
    if not isinstance(data, dict) or data.get("resultType") != "matrix" or not isinstance(data.get("result"), list):
        raise ToolOutputError(TOOL, "expected data.resultType matrix with a result list", str(body)[:200])
    out = []
    for item in data["result"]:
        if not isinstance(item, dict) or not isinstance(item.get("values"), list):
            raise ToolOutputError(TOOL, "a series without values", str(item)[:200])
        try:
            points = [[float(t), _number(v)] for t, v in item["values"]]
        except (TypeError, ValueError):
            raise ToolOutputError(TOOL, "a sample that is not [time, \"value\"]", str(item["values"])[:200])
        out.append({"metric": {str(k): str(v) for k, v in (item.get("metric") or {}).items()}, "points": points})
    return out
