"""module_utils/_docker: the docker CLI pointed at the daemon the community.docker modules use."""

from __future__ import annotations

from ansible_collections.sparkops.cluster.plugins.module_utils import _docker


class Params:
    def __init__(self, **params):
        self.params = dict({k: v.get("default") for k, v in _docker.OPTIONS.items()}, **params)


def test_no_options_leave_the_cli_to_its_environment():
    assert _docker.cli(Params(), "/usr/bin/docker") == ["/usr/bin/docker"]


def test_host_and_verified_tls():
    argv = _docker.cli(Params(docker_host="tcp://10.0.0.11:2376", validate_certs=True, ca_path="/ca.pem",
                              client_cert="/cert.pem", client_key="/key.pem"), "docker")
    assert argv == ["docker", "--host", "tcp://10.0.0.11:2376", "--tlsverify", "--tlscacert", "/ca.pem",
                    "--tlscert", "/cert.pem", "--tlskey", "/key.pem"]
    assert _docker.cli(Params(tls=True), "docker") == ["docker", "--tls"]
