"""node_facts: one module run that reads what ibdev2netdev, gpu_facts, memory_facts and
docker_host_info read, with the same results (real captured tool output)."""

from __future__ import annotations

import pytest

from ansible_collections.sparkops.cluster.plugins.module_utils import _command, _nodefacts
from ansible_collections.sparkops.cluster.plugins.modules import gpu_facts, ibdev2netdev, memory_facts, node_facts
from conftest import FIXTURES, fixture

SMI = "/usr/bin/nvidia-smi"
GPU_CSV = (SMI, "--query-gpu=" + ",".join(gpu_facts.FIELDS), "--format=csv,noheader,nounits")
MEM_TOTAL = (SMI, "--query-gpu=memory.total", "--format=csv,noheader,nounits")
APPS = (SMI, "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits")
DOCKER_INFO = ("/usr/bin/docker", "info", "--format", "{{json .Runtimes}}")
GETENT = ("getent", "hosts", "spark-alpha")
# what docker printed here when no engine ran (Docker 28.2.2 CLI), verbatim
NO_ENGINE = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n"


@pytest.fixture
def node(commands, binaries, fake_proc, monkeypatch):
    """A GB10 node: the DGX Spark ibdev2netdev and nvidia-smi captures, the build machine's
    docker info and a simulated node's getent answer."""
    table, calls = commands
    binaries.update({"ibdev2netdev": "/usr/bin/ibdev2netdev", "nvidia-smi": SMI, "docker": "/usr/bin/docker"})
    table[("/usr/bin/ibdev2netdev",)] = (0, fixture("ibdev2netdev_dgxspark_spark1_two_up_two_down.txt"), "")
    table[GPU_CSV] = (0, "0, NVIDIA GB10, GPU-5c2d, 580.95.05, 12.1, [N/A], [N/A], [N/A], 0000000F:01:00.0\n", "")
    table[(SMI,)] = (0, fixture("nvidia_smi_gb10_dgxspark_processes.txt"), "")
    table[MEM_TOTAL] = (0, "[N/A]\n", "")
    table[APPS] = (0, "4242, 3072\n", "")
    table[DOCKER_INFO] = (0, fixture("docker_info_runtimes_28.2.2_runc_only.txt"), "")
    table[GETENT] = (0, fixture("getent_hosts_debian12_three_addresses.txt"), "")
    monkeypatch.setattr(_nodefacts.os.path, "lexists", lambda p: p == "/usr/local/bin/nvidia-container-runtime-hook")
    return table, calls


def test_node_facts_reads_all_in_one_run(run_module, node):
    table, calls = node
    failed, r = run_module(node_facts, {"devices": ["rocep1s0f0", "roceP2p1s0f0"], "hostname": "spark-alpha"},
                           check_mode=True)
    assert not failed and r["changed"] is False
    assert r["rdma"]["source"] == "ibdev2netdev" and r["rdma"]["nccl_ib_hca"] == "=rocep1s0f0:1,roceP2p1s0f0:1"
    assert r["rdma"]["gloo_socket_ifname"] == "enp1s0f0np0"
    assert r["ansible_facts"]["sparkops_gpu"]["driver_version"] == "580.95.05"
    assert r["ansible_facts"]["sparkops_memory"]["mem_available"] == 20673356 * 1024
    assert r["docker_runtimes"] == ["io.containerd.runc.v2", "io.containerd.runtime.v1.linux", "runc"]
    assert r["toolkit_hook"] == "/usr/local/bin/nvidia-container-runtime-hook"
    assert r["hostname"] == {"name": "spark-alpha", "addresses": ["172.28.10.10", "192.168.100.10", "192.168.101.10"],
                             "note": None}
    assert sorted(map(tuple, calls)) == sorted([("/usr/bin/ibdev2netdev",), GPU_CSV, (SMI,), MEM_TOTAL, APPS,
                                                DOCKER_INFO, GETENT])


def test_node_facts_returns_what_the_single_modules_return(run_module, node):
    args = {"devices": ["roce*"]}
    runs = ((node_facts, args), (ibdev2netdev, args), (gpu_facts, {}), (memory_facts, {}))
    whole, rdma, gpu, memory = (run_module(module, margs)[1] for module, margs in runs)
    rdma.pop("changed")
    assert whole["rdma"] == rdma
    assert whole["ansible_facts"] == dict(gpu["ansible_facts"], **memory["ansible_facts"])
    assert whole["hostname"] is None


def test_node_facts_names_the_fix_when_no_docker_engine_answers(run_module, node):
    table = node[0]
    table[DOCKER_INFO] = (1, "", NO_ENGINE)
    failed, r = run_module(node_facts, {})
    assert failed and "Is the docker daemon running?" in r["msg"] and "systemctl start docker" in r["msg"]
    table[DOCKER_INFO] = (0, '{"runc":{"path":"ru\ufffd', "")  # cut short, a stray byte
    failed, r = run_module(node_facts, {})
    assert failed and "printed no JSON object" in r["msg"]


def test_node_facts_without_docker_cli_fails_naming_it(run_module, node, binaries):
    del binaries["docker"]
    failed, r = run_module(node_facts, {})
    assert failed and r["msg"].startswith("docker not found on this node: install Docker Engine")


def test_node_facts_a_broken_resolver_is_a_note_not_an_answer(run_module, node, monkeypatch):
    table = node[0]
    table[GETENT] = (2, "", "")
    failed, r = run_module(node_facts, {"hostname": "spark-alpha"})
    assert not failed and r["hostname"]["addresses"] == [] and r["hostname"]["note"] is None
    serve = _command.run

    def hang(argv, timeout, env=None, stdin=None):
        if argv[0] == "getent":
            raise _command.CommandTimeout(argv, timeout, b"")
        return serve(argv, timeout, env=env, stdin=stdin)

    monkeypatch.setattr(_command, "run", hang)
    failed, r = run_module(node_facts, {"hostname": "spark-alpha", "command_timeout": 7})
    assert not failed and r["hostname"]["addresses"] is None
    assert r["hostname"]["note"] == "getent hosts spark-alpha: getent hosts spark-alpha did not finish within 7s and was killed; last output line: (none)"


def test_node_facts_without_gpu_when_not_required(run_module, node, binaries):
    del binaries["nvidia-smi"]
    failed, r = run_module(node_facts, {})
    assert failed and "nvidia-smi not found" in r["msg"]
    failed, r = run_module(node_facts, {"gpu_required": False})
    assert not failed and r["ansible_facts"]["sparkops_gpu"]["count"] == 0


def test_node_facts_refuses_no_limit(run_module, node):
    failed, r = run_module(node_facts, {"command_timeout": 0})
    assert failed and r["msg"].startswith("command_timeout must be above 0")
    assert node[1] == []


def test_memory_options_are_checked_before_any_program_runs(run_module, node):
    failed, r = run_module(node_facts, {"settle_timeout": -1})
    assert failed and "settle_timeout" in r["msg"] and node[1] == []


def test_node_facts_gives_the_preflight_its_view_and_the_checkpoint(run_module, node, tmp_path):
    """With the plan's rails and the model directory (the head's), what the dynamic preflight
    reads comes back ready (preflight), the checkpoint's facts with it."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_bytes((FIXTURES / "config_json_sparkops_tiny_qwen2_transformers_5.19.0.json").read_bytes())
    rails = [{"name": "rail1", "netdev": "enp1s0f0np0", "rdma_device": "rocep1s0f0", "subnet": "192.168.100.0/24"},
             {"name": "rail2", "netdev": "enP2p1s0f0np0", "rdma_device": "roceP2p1s0f0", "subnet": "192.168.101.0/24"}]
    failed, r = run_module(node_facts, {"rails": rails, "hostname": "spark-alpha", "model_dir": str(model)})
    assert not failed, r
    view = r["preflight"]
    assert view["rails_up"] == {"rail1": True, "rail2": True} and view["driver_version"] == "580.95.05"
    assert view["docker_gpus"] is True and view["hostname_loopback"] is None  # the hook, a rail address first
    assert view["checkpoint"]["path"] == str(model / "config.json") and view["checkpoint"]["note"] is None
    assert view["checkpoint"]["facts"]["attention_heads"] == 8
    # the rails' devices were the selection
    assert r["rdma"]["nccl_ib_hca"] == "=rocep1s0f0:1,roceP2p1s0f0:1"
    failed, r = run_module(node_facts, {"rails": rails, "model_dir": str(tmp_path / "nowhere")})
    assert not failed and r["preflight"]["checkpoint"]["facts"] is None
    assert "has no config.json" in r["preflight"]["checkpoint"]["note"]
    failed, r = run_module(node_facts, {"rails": [{"name": "rail1"}]})
    assert failed and "rails[0] must give name, netdev and rdma_device" in r["msg"]
