#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: metrics_query
short_description: Read named series of the last hours from a Prometheus
version_added: 0.3.0
description:
  - Runs one range query (C(GET /api/v1/query_range)) per named PromQL expression against a Prometheus, over the
    last O(hours) with one point every O(step) seconds, each request bounded by O(timeout), and returns the series
    with their labels and points.
  - Reads only; check mode runs it in full.
author: sparkops.cluster developers (@sparkops)
extends_documentation_fragment:
  - sparkops.cluster.attributes
  - sparkops.cluster.attributes.READ_ONLY
options:
  url:
    description: The Prometheus, e.g. C(http://127.0.0.1:9090) (the monitoring role's, on the head's loopback).
    type: str
    required: true
  queries:
    description: Name of each series -> its PromQL expression.
    type: dict
    required: true
  hours:
    description: How far back, in hours.
    type: float
    default: 6
  step:
    description: Seconds between two points.
    type: int
    default: 60
  timeout:
    description: Seconds each request may take.
    type: int
    default: 30
"""

EXAMPLES = r"""
- name: The generation rate and the available memory of the last six hours
  sparkops.cluster.metrics_query:
    url: http://127.0.0.1:9090
    queries:
      generation_tok_s: rate(vllm:generation_tokens_total[1m])
      mem_available_bytes: node_memory_MemAvailable_bytes{job="node"}
  register: metrics
"""

RETURN = r"""
series:
  description: Name -> [{metric (labels), points ([unix seconds, value or null])}].
  returned: success
  type: dict
start:
  description: The first second of the range (unix time).
  returned: success
  type: float
end:
  description: The last second of the range (unix time).
  returned: success
  type: float
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.six.moves.urllib.parse import urlencode
from ansible.module_utils.urls import open_url

from ansible_collections.sparkops.cluster.plugins.module_utils._errors import ToolOutputError
from ansible_collections.sparkops.cluster.plugins.module_utils._promql import range_series


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type="str", required=True),
            queries=dict(type="dict", required=True),
            hours=dict(type="float", default=6),
            step=dict(type="int", default=60),
            timeout=dict(type="int", default=30),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not p["queries"] or not all(isinstance(q, str) and q.strip() for q in p["queries"].values()):
        module.fail_json(msg="queries must name at least one PromQL expression, each a non-empty string")
    for key, least in (("hours", 0), ("step", 0), ("timeout", 0)):
        if p[key] <= least:
            module.fail_json(msg="%s must be above %s, got %s" % (key, least, p[key]))
    end = time.time()
    start = end - p["hours"] * 3600
    base = p["url"].rstrip("/")
    series = {}
    for name, query in sorted(p["queries"].items()):
        args = {"query": query, "start": "%.3f" % start, "end": "%.3f" % end, "step": p["step"]}
        url = "%s/api/v1/query_range?%s" % (base, urlencode(args))
        try:
            body = open_url(url, timeout=p["timeout"], validate_certs=True).read()
        except Exception as exc:  # HTTPError carries Prometheus' JSON error for a bad query
            body = getattr(exc, "read", lambda: b"")() if hasattr(exc, "code") else None
            if not body:
                module.fail_json(msg="%s: %s cannot be read within %d s: %s" % (name, base, p["timeout"], exc))
        try:
            series[name] = range_series(body)
        except ToolOutputError as exc:
            module.fail_json(msg="%s (%s): %s" % (name, query, exc))
    module.exit_json(changed=False, series=series, start=start, end=end)


if __name__ == "__main__":
    main()
