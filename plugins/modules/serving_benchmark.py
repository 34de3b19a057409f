#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: serving_benchmark
short_description: Measure one load level of an OpenAI-compatible server (decode tok/s, TTFT, ITL)
description:
  - Sends O(requests) streamed chat completions to O(url), O(concurrency) at a time, each
    with a prompt of about O(prompt_words) words and O(max_tokens) generated tokens, and
    returns the level's statistics - per-request decode tok/s, aggregate output tok/s,
    requests/s, time to first token and inter-token latency (p50 and p99), and errors.
  - One call is one level; C(playbooks/benchmark.yml) loops over a sweep of concurrency
    levels and prompt lengths, so progress shows level by level, and the
    C(sparkops.cluster.benchmark_verdict) filter compares the result with the recipe.
  - Runs on the node that reaches the API (the head, since the API binds to 127.0.0.1 by
    default). Python standard library only. Generates load; changes nothing on the node.
version_added: 0.1.0
author: sparkops.cluster developers (@sparkops)
extends_documentation_fragment:
  - sparkops.cluster.attributes
attributes:
  check_mode:
    support: full
    details: Sends no request in check mode and reports it skipped (the module never changes anything).
  diff_mode:
    support: none
  idempotent:
    support: full
    details: Never reports a change.
options:
  url:
    description: Base URL of the API, for example C(http://127.0.0.1:8000).
    type: str
    required: true
  model:
    description: The served model name.
    type: str
    required: true
  concurrency:
    description: Requests in flight at once.
    type: int
    required: true
  prompt_words:
    description: Prompt length in words (about as many tokens); the measured count is returned.
    type: int
    default: 512
  requests:
    description:
      - Requests sent at this level; defaults to twice O(concurrency), at least 16 (so that p50 and p99 are of
        enough requests to differ).
      - Fewer requests than O(concurrency) run at concurrency O(requests); the level then
        reports that concurrency, with C(concurrency_requested) beside it and a warning.
    type: int
  max_tokens:
    description: Tokens generated per request.
    type: int
    default: 256
  ignore_eos:
    description: Ask vLLM to generate O(max_tokens) whatever the model says (fixed output length).
    type: bool
    default: true
  timeout:
    description:
      - Seconds one request may take in all, from sending it to the end of its stream; a request
        over it counts as an error (a hung decode). Keep-alive comments on the stream do not
        extend it, and a silent connection is dropped after this long too.
    type: int
    default: 600
  api_key:
    description: Bearer token of the API, when it has one.
    type: str
  warmup:
    description:
      - Requests sent at the level's concurrency before the measured ones, their figures
        discarded. The first requests at a new batch size pay the server's warm-up (kernels and
        graphs made for that size); without a warm-up, the first level measured pays it.
      - C(0) sends none.
    type: int
    default: 0
    version_added: 0.2.0
"""

EXAMPLES = r"""
- name: Four users with 2048-word prompts
  sparkops.cluster.serving_benchmark:
    url: http://127.0.0.1:8000
    model: qwen3.5-397b
    concurrency: 4
    prompt_words: 2048
    max_tokens: 256
  register: level
"""

RETURN = r"""
level:
  description: The level's statistics (times in ms, rates per second).
  returned: success
  type: dict
  contains:
    concurrency: {description: Requests in flight at once (at most O(requests))., type: int, returned: always}
    concurrency_requested: {description: O(concurrency) when more than O(requests)., type: int, returned: when capped}
    prompt_words: {description: Requested prompt length in words., type: int, returned: always}
    prompt_tokens: {description: Mean prompt tokens the server counted., type: float, returned: always}
    requests: {description: Requests sent and measured., type: int, returned: always}
    warmup_requests: {description: Requests sent before them and not measured (O(warmup))., type: int, returned: always}
    completed: {description: Requests that returned tokens., type: int, returned: always}
    errors: {description: Requests that failed or timed out., type: int, returned: always}
    error_samples: {description: Up to three distinct error messages., type: list, returned: always}
    wall_s: {description: Seconds from the first request to the last answer., type: float, returned: always}
    requests_per_s: {description: Completed requests per second., type: float, returned: always}
    output_tok_s: {description: Generated tokens per second over all requests., type: float, returned: always}
    decode_tok_s:
      description:
        - Mean per-request decode speed after the first token, over the requests whose tokens
          streamed one by one; null when every stream came in bursts.
      type: float
      returned: always
    bursty_requests:
      description:
        - Requests whose chunks mostly arrived together (gaps under 1 ms), held up and released at
          once by a CPU-starved client or API server; their span is not a decode speed.
      type: int
      returned: always
    ttft_ms: {description: "Time to first token, p50 and p99.", type: dict, returned: always}
    itl_ms: {description: "Inter-token latency, p50 and p99.", type: dict, returned: always}
  sample:
    concurrency: 1
    prompt_words: 512
    prompt_tokens: 516.0
    requests: 4
    completed: 4
    errors: 0
    error_samples: []
    wall_s: 41.2
    requests_per_s: 0.097
    output_tok_s: 24.9
    decode_tok_s: 25.6
    bursty_requests: 0
    ttft_ms: {p50: 402.3, p99: 431.0}
    itl_ms: {p50: 38.9, p99: 41.7}
"""

import json
import time
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.urls import Request, make_context

from ansible_collections.sparkops.cluster.plugins.module_utils import _bench
from ansible_collections.sparkops.cluster.plugins.module_utils._errors import ToolOutputError


def client(p):
    """One HTTP client for every request of a level. open_url builds an SSL context (the
    system's CA bundle, about 40 ms of CPU on a busy node) on every call, which fell inside
    each request's time to first token; vLLM's own benchmark opens one session for all."""
    return Request(context=make_context(), timeout=p["timeout"])


def one_request(p, body, http):
    data = json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if p["api_key"]:
        headers["Authorization"] = "Bearer " + p["api_key"]
    token_times, usage = [], None
    started = time.monotonic()  # the clock starts at the send, as in `vllm bench serve`
    try:
        with http.open("POST", p["url"].rstrip("/") + "/v1/chat/completions", data=data, headers=headers) as resp:
            for payload in _bench.sse_payloads(resp, deadline=started + p["timeout"]):
                if _bench.carries_token(payload):
                    token_times.append(time.monotonic())
                usage = payload.get("usage") or usage
    except _bench.StreamDeadline:
        return _bench.record(started, token_times, usage, "the answer did not end within %ds" % p["timeout"])
    except HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:200]
        return _bench.record(started, token_times, usage, "HTTP %d: %s" % (exc.code, detail))
    except (URLError, OSError, ToolOutputError) as exc:
        return _bench.record(started, token_times, usage, "%s: %s" % (type(exc).__name__, exc))
    return _bench.record(started, token_times, usage)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type="str", required=True),
            model=dict(type="str", required=True),
            concurrency=dict(type="int", required=True),
            prompt_words=dict(type="int", default=512),
            requests=dict(type="int"),
            max_tokens=dict(type="int", default=256, no_log=False),
            ignore_eos=dict(type="bool", default=True),
            timeout=dict(type="int", default=600),
            api_key=dict(type="str", no_log=True),
            warmup=dict(type="int", default=0),
        ),
        supports_check_mode=True,
    )
    p = module.params
    for name in ("concurrency", "prompt_words", "max_tokens", "timeout"):
        if p[name] < 1:
            module.fail_json(msg="%s must be 1 or more, got %d" % (name, p[name]))
    if p["warmup"] < 0:
        module.fail_json(msg="warmup must be 0 or more, got %d" % p["warmup"])
    # at least 16: a p99 of 4 requests is their maximum
    total = p["requests"] if p["requests"] is not None else max(16, 2 * p["concurrency"])
    if total < 1:
        module.fail_json(msg="requests must be 1 or more, got %d" % total)
    # fewer requests than concurrency never reach it: the level is measured at what runs
    concurrency = min(p["concurrency"], total)
    if module.check_mode:
        module.exit_json(changed=False, skipped=True, msg="check mode: no request sent")

    body = {"model": p["model"], "max_tokens": p["max_tokens"], "stream": True, "temperature": 0,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": _bench.prompt(p["prompt_words"])}]}
    if p["ignore_eos"]:
        body["ignore_eos"] = True
    http = client(p)
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(lambda i: one_request(p, body, http), range(p["warmup"])))
        started = time.monotonic()
        records = list(pool.map(lambda i: one_request(p, body, http), range(total)))
    level = _bench.summarize(records, time.monotonic() - started, concurrency, p["prompt_words"])
    level["warmup_requests"] = p["warmup"]
    if concurrency != p["concurrency"]:
        level["concurrency_requested"] = p["concurrency"]
        module.warn("requests %d is below concurrency %d: the level ran at concurrency %d"
                    % (total, p["concurrency"], concurrency))
    module.exit_json(changed=False, level=level)


if __name__ == "__main__":
    main()
