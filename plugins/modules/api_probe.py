#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: api_probe
short_description: Read a vLLM server as a client would - /health, /v1/models, one completion, the token counter
description:
  - In one call, reads the OpenAI-compatible server at O(url) the way the deploy's readiness check does. It reads
    C(/health), then C(/v1/models), then C(vllm:generation_tokens_total) from C(/metrics), sends one chat
    completion of O(max_tokens) tokens, and reads the counter again. A C(/health) that stays green through a decode
    deadlock (spark-vllm-docker#260) shows as a completion that gives no token, or a counter that does not move.
  - Each read is bounded (O(timeout), and O(completion_timeout) for the completion) and answered with its HTTP
    status. The module never fails on what the server answers, including no answer at all. The caller judges
    RV(serving) and the parts.
  - With O(only_health), it reads C(/health) and sends a one-token completion, nothing more.
  - Sends one completion; never reports C(changed).
version_added: 0.2.0
author: sparkops.cluster developers (@sparkops)
extends_documentation_fragment:
  - sparkops.cluster.attributes
  - sparkops.cluster.attributes.READ_ONLY
options:
  url:
    description: Base URL of the server, for example C(http://127.0.0.1:8000).
    type: str
    required: true
  model:
    description: The served model name.
    type: str
    required: true
  api_key:
    description: Bearer token of the API, when it has one.
    type: str
  prompt:
    description: The user message of the completion.
    type: str
    default: Say hello.
  max_tokens:
    description: Tokens asked of the completion.
    type: int
    default: 16
  completion_timeout:
    description: Seconds the completion may take.
    type: int
    default: 120
  timeout:
    description: Seconds each other read may take.
    type: int
    default: 10
  only_health:
    description: Read C(/health) and ask for one token only (a quick check that a running engine generates).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Does the server generate?
  sparkops.cluster.api_probe:
    url: http://127.0.0.1:8000
    model: qwen3.5-397b
  register: probe
  failed_when: not probe.serving
"""

RETURN = r"""
serving:
  description:
    - True when /health answered 200, /v1/models lists O(model), the completion gave tokens and the counter moved by
      at least as many. With O(only_health), when /health answered 200 and the completion gave a token.
  returned: always
  type: bool
health:
  description: The HTTP status of /health (-1 without an answer).
  returned: always
  type: int
models:
  description: The status and the ids of /v1/models.
  returned: unless only_health
  type: dict
  sample: {status: 200, ids: [qwen3.5-397b]}
completion:
  description: The status, the completion's tokens, its seconds and, without an answer or a 200, why.
  returned: when /health answered 200
  type: dict
  sample: {status: 200, completion_tokens: 16, seconds: 1.8, error: null}
tokens_before:
  description: vllm:generation_tokens_total before the completion (null when /metrics has none).
  returned: unless only_health
  type: float
tokens_after:
  description: The same after it.
  returned: unless only_health
  type: float
why:
  description: One sentence on what is not as it should be, or null.
  returned: always
  type: str
"""

import json
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url

from ansible_collections.sparkops.cluster.plugins.module_utils._status import generation_tokens


def fetch(url, timeout, headers=None, body=None):
    """(status, text, error) of one request; status -1 without an HTTP answer."""
    data = json.dumps(body).encode("utf-8") if body is not None else None
    hdrs = dict(headers or {}, **({"Content-Type": "application/json"} if data is not None else {}))
    try:
        resp = open_url(url, data=data, headers=hdrs, method="POST" if data is not None else "GET", timeout=timeout,
                        validate_certs=False)
        return resp.getcode(), resp.read().decode("utf-8", "replace"), None
    except Exception as exc:  # an HTTP error carries its code; a refused or timed-out one has none
        code = getattr(exc, "code", None)
        body = ""
        try:
            body = exc.read().decode("utf-8", "replace") if hasattr(exc, "read") else ""
        except Exception:
            pass
        return (code if isinstance(code, int) else -1), body, str(getattr(exc, "reason", None) or exc)[:300]


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type="str", required=True),
            model=dict(type="str", required=True),
            api_key=dict(type="str", no_log=True),
            prompt=dict(type="str", default="Say hello."),
            max_tokens=dict(type="int", default=16, no_log=False),
            completion_timeout=dict(type="int", default=120),
            timeout=dict(type="int", default=10),
            only_health=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    for name in ("max_tokens", "completion_timeout", "timeout"):
        if p[name] < 1:
            module.fail_json(msg="%s must be 1 or more, got %d" % (name, p[name]))
    base = p["url"].rstrip("/")
    auth = {"Authorization": "Bearer " + p["api_key"]} if p["api_key"] else {}
    out = dict(changed=False, serving=False, why=None)
    out["health"], _text, error = fetch(base + "/health", p["timeout"])
    if out["health"] != 200:
        out["why"] = "/health answered %s" % (out["health"] if out["health"] != -1 else "nothing (%s)" % error)
        module.exit_json(**out)

    def complete(max_tokens):
        body = {"model": p["model"], "messages": [{"role": "user", "content": p["prompt"]}], "max_tokens": max_tokens}
        began = time.monotonic()
        status, text, error = fetch(base + "/v1/chat/completions", p["completion_timeout"], auth, body)
        tokens = None
        if status == 200:
            try:
                tokens = int((json.loads(text).get("usage") or {}).get("completion_tokens") or 0)
            except (ValueError, TypeError, AttributeError):
                error = "the answer is not a chat completion: %r" % text[:200]
        elif error is None:
            error = text[:300]
        return {"status": status, "completion_tokens": tokens, "seconds": round(time.monotonic() - began, 2),
                "error": error}

    if p["only_health"]:
        out["completion"] = complete(1)
        out["serving"] = bool(out["completion"]["completion_tokens"])
        if not out["serving"]:
            out["why"] = "/health is 200 but the completion gave no token within %d s (%s)" % (
                p["completion_timeout"], out["completion"]["error"] or "status %s" % out["completion"]["status"])
        module.exit_json(**out)

    status, text, error = fetch(base + "/v1/models", p["timeout"], auth)
    ids = []
    if status == 200:
        try:
            ids = [m.get("id") for m in json.loads(text).get("data") or []]
        except (ValueError, TypeError, AttributeError):
            error = "the answer is not a model list: %r" % text[:200]
    out["models"] = {"status": status, "ids": ids, "error": error}
    out["tokens_before"] = generation_tokens(fetch(base + "/metrics", p["timeout"])[1])
    out["completion"] = complete(p["max_tokens"])
    out["tokens_after"] = generation_tokens(fetch(base + "/metrics", p["timeout"])[1])
    got = out["completion"]["completion_tokens"] or 0
    moved = (out["tokens_after"] or 0) - (out["tokens_before"] or 0)
    if p["model"] not in ids:
        out["why"] = "/v1/models answered %s and lists %s, not %s" % (status, ids or "nothing", p["model"])
    elif got < 1:
        out["why"] = "the completion gave no token within %d s (%s)" % (
            p["completion_timeout"], out["completion"]["error"] or "status %s" % out["completion"]["status"])
    elif moved < got:
        out["why"] = ("vllm:generation_tokens_total went from %s to %s while the completion returned %d tokens: the "
                      "engine is not generating (spark-vllm-docker#260: /health green through a decode deadlock)"
                      % (out["tokens_before"], out["tokens_after"], got))
    out["serving"] = out["why"] is None
    module.exit_json(**out)


if __name__ == "__main__":
    main()
