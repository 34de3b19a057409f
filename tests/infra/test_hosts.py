"""Host roles on the simulated cluster, seen from outside Ansible (pytest-testinfra).

Run by molecule/cluster/verify.yml after the converge:
    python -m pytest tests/infra --hosts=docker://spark-alpha,docker://spark-beta,...
Expected addresses come from the same inventory (inventory/simulated) the deploy used.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
import yaml

INVENTORY = Path(__file__).resolve().parents[2] / "inventory" / "simulated"
FABRIC = yaml.safe_load((INVENTORY / "group_vars" / "sparkops_nodes" / "fabric.yml").read_text())
NODES = {p.stem: yaml.safe_load(p.read_text())["sparkops_node_index"] for p in (INVENTORY / "host_vars").glob("*.yml")}
RAILS = FABRIC["sparkops_rails"]


def address(rail, node):
    net = ipaddress.ip_network(rail["subnet"])
    return str(net.network_address + FABRIC["sparkops_rail_host_offset"] + NODES[node])


def name(host):
    return host.check_output("hostname")


def test_systemd_is_pid_1_and_default_target_is_multi_user(host):
    assert host.check_output("ps -o comm= -p 1") == "systemd"
    assert host.check_output("systemctl get-default") == "multi-user.target"


@pytest.mark.parametrize("rail", RAILS, ids=[r["name"] for r in RAILS])
def test_rail_up_with_mtu_9000_its_address_and_no_ipv6(host, rail):
    dev = rail["netdev"]
    assert host.file("/sys/class/net/%s/mtu" % dev).content_string.strip() == "9000"
    assert host.file("/sys/class/net/%s/operstate" % dev).content_string.strip() == "up"
    addresses = host.interface(dev).addresses
    assert address(rail, name(host)) in addresses
    assert not [a for a in addresses if ":" in a], "IPv6 address on a rail: %s" % addresses


@pytest.mark.parametrize("rail", RAILS, ids=[r["name"] for r in RAILS])
def test_every_peer_answers_an_unfragmented_jumbo_ping(host, rail):
    me = name(host)
    for peer in sorted(set(NODES) - {me}):
        cmd = host.run("ping -c 1 -W 2 -M do -s 8972 -I %s %s", rail["netdev"], address(rail, peer))
        assert cmd.rc == 0, "%s %s -> %s: %s" % (me, rail["name"], peer, cmd.stdout + cmd.stderr)


def test_networkd_manages_both_rails_and_no_default_route_on_them(host):
    links = host.check_output("networkctl list --no-legend")
    for rail in RAILS:
        assert any(rail["netdev"] in line and "configured" in line for line in links.splitlines()), links
        assert "default" not in host.check_output("ip route show dev %s" % rail["netdev"])


def test_netplan_file_is_0600_with_the_rails(host):
    f = host.file("/etc/netplan/60-sparkops-rails.yaml")
    assert f.exists and f.mode == 0o600 and f.user == "root"
    me = name(host)
    for rail in RAILS:
        assert "addresses: [%s/%d]" % (address(rail, me), ipaddress.ip_network(rail["subnet"]).prefixlen) in f.content_string
    assert f.content_string.count("mtu: 9000") == len(RAILS) and "link-local: []" in f.content_string


@pytest.mark.parametrize("path, line", [
    ("/etc/sysctl.d/60-sparkops-rails-ipv6.conf", "net.ipv6.conf.enp1s0f1np1.disable_ipv6 = 1"),
    ("/etc/sysctl.d/60-sparkops-rails-ipv6.conf", "net.ipv6.conf.enP2p1s0f1np1.disable_ipv6 = 1"),
    ("/etc/sysctl.d/60-sparkops-memory.conf", "vm.swappiness = 1"),
    ("/etc/sysctl.d/60-sparkops-memory.conf", "vm.max_map_count = 1048576"),
    ("/etc/security/limits.d/60-sparkops-memlock.conf", "root hard    memlock    unlimited"),
    ("/etc/systemd/logind.conf.d/60-sparkops.conf", "RemoveIPC=no"),
])
def test_drop_ins_not_shared_files(host, path, line):
    f = host.file(path)
    assert f.exists and f.mode == 0o644, path
    assert line.split() in [x.split() for x in f.content_string.splitlines()], "%s lacks %r" % (path, line)
    # memlock for root only (no other user may pin the unified memory the GPU needs)
    assert not [x for x in host.file("/etc/security/limits.d/60-sparkops-memlock.conf").content_string.splitlines()
                if x.split()[:1] == ["*"]]
    # never appended to the shared files (a field guide appends to limits.conf on every run)
    assert "sparkops" not in host.file("/etc/security/limits.conf").content_string
    assert "sparkops" not in host.file("/etc/sysctl.conf").content_string
