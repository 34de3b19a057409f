"""A rails apply confirmed on the node (plugins/module_utils/_confirm.py, module apply_confirmed):
the parsers on iproute2 output and /proc/net/tcp captured here (tests/fixtures), and the
sequence with a fake node and a fake clock: each step that fails rolls back at once, names
itself and what it measured; only a confirmation of this run keeps the new rails."""

from __future__ import annotations

import pytest

from ansible_collections.sparkops.cluster.plugins.module_utils import _confirm
from ansible_collections.sparkops.cluster.plugins.module_utils._errors import ToolOutputError
from ansible_collections.sparkops.cluster.plugins.modules import apply_confirmed
from conftest import fixture

RAILS = [{"name": "rail1", "netdev": "enp1s0f1np1", "address": "192.168.100.10", "subnet": "192.168.100.0/24",
          "mtu": 9000},
         {"name": "rail2", "netdev": "enP2p1s0f1np1", "address": "192.168.101.10", "subnet": "192.168.101.0/24",
          "mtu": 9000}]


def test_addresses_of_every_interface():
    found = _confirm.parse_addresses(fixture("ip_iproute2_6.1.0_addr_rail2_without_address.txt"))
    assert found == {"lo": ["127.0.0.1"], "enp1s0f1np1": ["192.168.100.10"], "eth0": ["172.28.10.10"]}


def test_addresses_of_a_node_in_the_simulated_cluster():
    found = _confirm.parse_addresses(fixture("ip_iproute2_6.1.0_addr_spark_alpha.txt"))
    assert found["enp1s0f1np1"] == ["192.168.100.10"] and found["enP2p1s0f1np1"] == ["192.168.101.10"]
    assert found["eth0"] == ["172.28.10.10"]


def test_addresses_output_that_is_not_ip_is_named():
    with pytest.raises(ToolOutputError, match="ip -o -4 addr show"):
        _confirm.parse_addresses("Object \"adr\" is unknown, try \"ip help\".\n")
    assert _confirm.parse_addresses("") == {}  # no IPv4 address at all: a state, not an error


@pytest.mark.parametrize("name, route", [
    ("ip_iproute2_6.1.0_route_get_management.txt", {"dev": "eth0", "via": None, "src": "172.28.10.10"}),
    ("ip_iproute2_6.1.0_route_get_moved_to_rail.txt", {"dev": "enp1s0f1np1", "via": "192.168.100.254",
                                                        "src": "192.168.100.10"}),
    ("ip_iproute2_6.1.0_route_get_onlink.txt", {"dev": "enp1s0f1np1", "via": None, "src": "192.168.100.10"}),
])
def test_route_get(name, route):
    assert _confirm.parse_route(fixture(name)) == route


def test_route_without_a_device_is_named():
    with pytest.raises(ToolOutputError, match="no 'dev DEVICE'"):
        _confirm.parse_route("RTNETLINK answers: Network is unreachable\n")


def test_the_controller_is_the_client_of_the_ssh_session():
    assert _confirm.ssh_client(fixture("ssh_connection_openssh_debian12_spark_alpha.txt")) == "172.28.10.1"
    assert _confirm.ssh_client("fd77::1 50522 fd77::10 22\n") == "fd77::1"
    assert _confirm.ssh_client("") is None and _confirm.ssh_client("\n") is None  # no SSH: no route to check


@pytest.mark.parametrize("text", ["172.28.10.1 39680", "spark-ctl 39680 172.28.10.10 22", "a b c d"])
def test_a_session_value_of_another_shape_is_named(text):
    with pytest.raises(ToolOutputError, match="SSH_CONNECTION"):
        _confirm.ssh_client(text)


def test_rail_problems_in_the_words_of_the_role():
    addresses = _confirm.parse_addresses(fixture("ip_iproute2_6.1.0_addr_rail2_without_address.txt"))
    sysfs = {"enp1s0f1np1": {"operstate": "up", "mtu": 9000}, "enP2p1s0f1np1": {"operstate": "up", "mtu": 1500}}
    problems = _confirm.rail_problems("spark-alpha", RAILS, sysfs, addresses)
    assert problems == [
        "spark-alpha: rail rail2 (enP2p1s0f1np1) has MTU 1500, not 9000: apply the netplan role (setup_hosts.yml) "
        "on this node",
        "spark-alpha: rail rail2 (enP2p1s0f1np1) has no IPv4 address, not 192.168.101.10/24: networkd has not "
        "configured it yet or the netplan file is not applied; apply the netplan role, then see `networkctl status "
        "enP2p1s0f1np1`"]
    sysfs["enP2p1s0f1np1"] = None
    assert "is not an interface of this node" in _confirm.rail_problems("spark-alpha", RAILS, sysfs, addresses)[0]
    sysfs = {"enp1s0f1np1": {"operstate": "down", "mtu": 9000}}
    assert "is down (no carrier)" in _confirm.rail_problems("spark-alpha", RAILS[:1], sysfs, addresses)[0]


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


class Node:
    """A fake node: what each operation returns, and the calls in order. `rails_after` is the
    number of reads before the rails are up; `acked_after` the seconds after the arming at
    which the controller's confirmation arrives (None: never)."""

    def __init__(self, clock, apply_rc=0, rails_after=1, clients=("172.28.10.1",), moved=False, answering=(),
                 acked_after=5.0, timer_fired=False, rollback_rc=0):
        self.clock, self.calls = clock, []
        self.apply_rc, self.rails_after, self.clients, self.moved = apply_rc, rails_after, clients, moved
        self.answering, self.acked_after, self.timer_fired, self.rollback_rc = answering, acked_after, timer_fired, \
            rollback_rc
        self.applied, self.armed_at = False, None

    def arm(self, seconds):
        self.calls.append(("arm", seconds))
        self.armed_at = self.clock()

    def controller(self):
        return list(self.clients)

    def route(self, address):
        if self.applied and self.moved:
            return {"dev": "enp1s0f1np1", "via": "192.168.100.254", "src": "192.168.100.10"}
        return {"dev": "eth0", "via": None, "src": "172.28.10.10"}

    def apply(self, timeout):
        self.calls.append(("apply", timeout))
        self.clock.now += 2
        self.applied = True
        return self.apply_rc, "" if self.apply_rc == 0 else "Invalid YAML: mapping values are not allowed"

    def rail_problems(self):
        self.rails_after -= 1
        return [] if self.rails_after <= 0 else ["spark-alpha: rail rail2 (enP2p1s0f1np1) has no IPv4 address"]

    def ping(self, address):
        self.calls.append(("ping", address))
        return address in self.answering

    def acked(self):
        return self.acked_after is not None and self.clock() - self.armed_at >= self.acked_after

    def disarm(self):
        self.calls.append(("disarm",))
        return self.timer_fired

    def rollback(self, timeout):
        self.calls.append(("rollback", timeout))
        return self.rollback_rc, "" if self.rollback_rc == 0 else "netplan: command not found"


def run(node, clock, targets=("10.0.0.1",), window=120, settle=60):
    return _confirm.run(node, list(targets), window, settle, clock, clock.sleep)


def test_confirmed_when_every_check_holds_and_the_controller_confirms():
    clock = Clock()
    node = Node(clock, rails_after=3, answering=("10.0.0.1",), acked_after=15)
    result = run(node, clock)
    assert result["confirmed"] and not result["rolled_back"] and result["step"] is None
    assert node.calls[0] == ("arm", 120 + _confirm.TIMER_MARGIN)
    assert node.calls[1][0] == "apply" and node.calls[-1] == ("disarm",)
    assert ("rollback", _confirm.ROLLBACK_TIMEOUT) not in node.calls
    assert result["clients"] == ["172.28.10.1"]
    assert result["seconds"]["applied"] == 2.0 and result["seconds"]["rails"] == 3.0  # two reads 0.5 s apart
    assert result["seconds"]["confirmed"] == 15.0


def test_a_slow_controller_within_the_window_keeps_the_rails():
    # the node's checks pass in seconds; the controller reaches it 100 s later: still in time
    clock = Clock()
    result = run(Node(clock, answering=("10.0.0.1",), acked_after=100), clock)
    assert result["confirmed"] and result["seconds"]["checked"] < 5


def test_no_confirmation_within_the_window_rolls_back_on_the_node():
    clock = Clock()
    node = Node(clock, answering=("10.0.0.1",), acked_after=None)
    result = run(node, clock, window=30)
    assert not result["confirmed"] and result["rolled_back"] and result["step"] == "confirm"
    assert "did not reach the node within 30s of the apply" in result["detail"]
    assert "node's own checks had passed 0.0s after the apply" in result["detail"]
    assert _confirm.timeline(result["seconds"]).startswith("applied 2.0s, rails up 2.0s, checks passed 2.0s, rolled back 3")
    assert node.calls[-2:] == [("disarm",), ("rollback", _confirm.ROLLBACK_TIMEOUT)]
    assert 30 <= result["seconds"]["rolled_back"] < 31


def test_a_failed_apply_rolls_back_at_once():
    clock = Clock()
    node = Node(clock, apply_rc=1)
    result = run(node, clock)
    assert result["step"] == "apply" and result["rolled_back"]
    assert result["detail"] == "the apply failed (rc=1): Invalid YAML: mapping values are not allowed"
    assert ("ping", "10.0.0.1") not in node.calls


def test_rails_that_never_come_up_are_named():
    clock = Clock()
    result = run(Node(clock, rails_after=10 ** 6), clock, settle=20)
    assert result["step"] == "rails" and result["rolled_back"]
    assert result["detail"].startswith("the rails were not up with their addresses and MTU 20s after the apply: "
                                       "spark-alpha: rail rail2 (enP2p1s0f1np1) has no IPv4 address")


def test_a_route_to_the_controller_moved_onto_a_rail_rolls_back_before_the_pings():
    clock = Clock()
    node = Node(clock, moved=True, answering=("10.0.0.1",))
    result = run(node, clock)
    assert result["step"] == "route" and result["rolled_back"]
    assert result["detail"] == (
        "the route to the controller moved: 172.28.10.1: was out of eth0 from 172.28.10.10, now out of enp1s0f1np1 "
        "through 192.168.100.254 from 192.168.100.10")
    assert ("ping", "10.0.0.1") not in node.calls
    assert result["seconds"]["rolled_back"] < 5  # at once, not at the end of the window


def test_a_silent_confirm_target_is_named_after_its_time():
    clock = Clock()
    result = run(Node(clock, answering=()), clock, targets=("192.168.100.254",), window=120)
    assert result["step"] == "targets" and result["rolled_back"]
    assert result["detail"].startswith("192.168.100.254 no longer answered a ping (")
    assert result["seconds"]["rolled_back"] <= 3 + _confirm.TARGET_TIMEOUT + 1


def test_the_target_wait_ends_with_the_window():
    clock = Clock()
    result = run(Node(clock, answering=()), clock, targets=("192.168.100.254",), window=15)
    assert result["step"] == "targets" and 15 <= result["seconds"]["rolled_back"] <= 16


def test_a_timer_that_fired_first_is_reported_and_not_rolled_back_twice():
    clock = Clock()
    node = Node(clock, answering=("10.0.0.1",), timer_fired=True)
    result = run(node, clock)
    assert not result["confirmed"] and result["rolled_back"] and result["by_timer"] and result["step"] == "timer"
    assert not [c for c in node.calls if c[0] == "rollback"]


def test_a_failed_rollback_is_not_called_a_rollback():
    clock = Clock()
    result = run(Node(clock, apply_rc=1, rollback_rc=127), clock)
    assert not result["rolled_back"]
    assert result["detail"].endswith("; the rollback itself failed (rc=127): netplan: command not found")


def test_no_ssh_client_no_route_check():
    clock = Clock()
    result = run(Node(clock, clients=(), moved=True, answering=("10.0.0.1",)), clock)
    assert result["confirmed"] and result["clients"] == []


def test_module_check_mode_applies_nothing(run_module, commands):
    failed, result = run_module(apply_confirmed, dict(
        apply_command="netplan apply", rollback_command="/usr/local/sbin/sparkops-netplan-rollback", rails=RAILS,
        window=120, ack_file="/run/sparkops-netplan-confirm", nonce="abc"), check_mode=True)
    assert not failed and result["changed"] and not commands[1]
    assert result["msg"] == "would apply the change behind a 120s rollback timer"


@pytest.mark.parametrize("args, says", [
    (dict(apply_command="sh -c 'unterminated"), "apply_command \"sh -c 'unterminated\" cannot be run: No closing "
                                                "quotation"),
    (dict(nonce=" "), "nonce must not be empty"),
    (dict(window=0), "window must be above 0"),
])
def test_module_refuses_bad_arguments_before_anything(run_module, commands, args, says):
    base = dict(apply_command="netplan apply", rollback_command="/usr/local/sbin/sparkops-netplan-rollback",
                rails=RAILS, window=120, ack_file="/run/sparkops-netplan-confirm", nonce="abc")
    failed, result = run_module(apply_confirmed, dict(base, **args))
    assert failed and says in result["msg"] and not commands[1]


def test_module_refuses_a_session_value_it_cannot_read(run_module, commands):
    failed, result = run_module(apply_confirmed, dict(
        apply_command="netplan apply", rollback_command="/usr/local/sbin/sparkops-netplan-rollback", rails=RAILS,
        window=120, ack_file="/run/sparkops-netplan-confirm", nonce="abc", ssh_connection="garbage"))
    assert failed and result["msg"].startswith("ssh_connection: cannot parse SSH_CONNECTION output") and not commands[1]
