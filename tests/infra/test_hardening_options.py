"""os_hardening's optional settings, seen from outside Ansible (pytest-testinfra).

Run by molecule/hardening/verify.yml after its converge (molecule/hardening/converge.yml):
    python -m pytest tests/infra/test_hardening_options.py --hosts=docker://sparkops-hardening
"""

from __future__ import annotations

import json


def test_daemon_json_has_the_settings_and_keeps_the_existing_keys(host):
    f = host.file("/etc/docker/daemon.json")
    assert f.mode == 0o644 and f.user == "root"
    config = json.loads(f.content_string)
    # from prepare.yml: the NVIDIA runtime and a nofile limit stay
    assert config["runtimes"] == {"nvidia": {"args": [], "path": "nvidia-container-runtime"}}
    assert config["default-ulimits"]["nofile"] == {"Name": "nofile", "Soft": 65536, "Hard": 65536}
    # from the role
    assert config["default-ulimits"]["memlock"] == {"Name": "memlock", "Soft": -1, "Hard": -1}
    assert config["default-ulimits"]["stack"] == {"Name": "stack", "Soft": 67108864, "Hard": 67108864}
    assert config["log-opts"] == {"max-size": "100m", "max-file": "3"}


def test_swap_is_off_and_masked_at_boot(host):
    assert host.check_output("systemctl is-enabled swap.target || true") == "masked"
    assert host.check_output("swapon --show=NAME --noheadings") == ""


def test_governor_drop_in_for_every_core(host):
    f = host.file("/etc/tmpfiles.d/60-sparkops-cpufreq.conf")
    assert f.mode == 0o644
    lines = [ln for ln in f.content_string.splitlines() if ln and not ln.startswith("#")]
    assert lines == ["w /sys/devices/system/cpu/cpu*/cpufreq/scaling_governor - - - - performance"]
    # systemd-tmpfiles parses the line (the container has no cpufreq: the glob matches nothing)
    out = host.run("systemd-tmpfiles --create /etc/tmpfiles.d/60-sparkops-cpufreq.conf")
    assert out.rc == 0 and out.stderr == ""
    # and refuses a broken one, so the check above can fail
    assert host.run("printf 'K /sys/x/y - - - - x\\n' | systemd-tmpfiles --create /dev/stdin").rc == 65


def test_memory_drop_ins_still_there(host):
    assert "vm.swappiness = 1" in host.file("/etc/sysctl.d/60-sparkops-memory.conf").content_string.splitlines()
    assert host.file("/etc/security/limits.d/60-sparkops-memlock.conf").contains("memlock")


def test_the_display_manager_is_stopped_and_disabled_and_the_node_boots_headless(host):
    # prepare.yml enabled and started a unit under gdm3's name and set graphical.target
    gdm = host.service("gdm3")
    assert not gdm.is_running and not gdm.is_enabled
    assert host.check_output("systemctl get-default") == "multi-user.target"


def test_earlyoom_runs_with_the_roles_arguments(host):
    """converge.yml gives the gb10 profile, which turns earlyoom on (os_hardening_earlyoom's default)."""
    dropin = host.file("/etc/systemd/system/earlyoom.service.d/60-sparkops.conf")
    assert dropin.mode == 0o644 and dropin.user == "root"
    service = host.service("earlyoom")
    assert service.is_enabled and service.is_running
    # the running process has the drop-in's arguments, not the package's (-r 3600 only)
    args = host.check_output("cat /proc/$(systemctl show --property MainPID --value earlyoom)/cmdline | tr '\\0' ' '")
    assert args.startswith("/usr/bin/earlyoom -m 4,2 -s 100,100 -r 3600 --prefer ")
    assert "(^|/)(sshd|systemd.*|dockerd|containerd.*|docker|vllm-serve|engine-boot)$" in args
    # earlyoom itself says it runs with those thresholds
    log = host.check_output("journalctl -u earlyoom --no-pager -o cat | head -n 20")
    assert "sending SIGTERM when mem <=  4.00% and swap <= 100.00%" in log, log
