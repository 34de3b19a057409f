# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The docker CLI from a module, pointed at the same daemon as the community.docker modules:
the same option names (docker_host, tls, validate_certs, ca_path, client_cert,
client_key), so one module_defaults group serves both. Unset options leave the CLI to its
own environment (DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH)."""

from __future__ import annotations

OPTIONS = dict(
    docker_host=dict(type="str", aliases=["docker_url"]),
    tls=dict(type="bool", default=False),
    validate_certs=dict(type="bool", default=False, aliases=["tls_verify"]),
    ca_path=dict(type="path", aliases=["ca_cert", "tls_ca_cert", "cacert_path"]),
    client_cert=dict(type="path", aliases=["tls_client_cert", "cert_path"]),
    client_key=dict(type="path", aliases=["tls_client_key", "key_path"]),
)


def cli(module, docker):
    """argv prefix of the docker CLI for this module's connection options."""
    p = module.params
    argv = [docker]
    if p.get("docker_host"):
        argv += ["--host", p["docker_host"]]
    if p.get("validate_certs"):
        argv.append("--tlsverify")
    elif p.get("tls"):
        argv.append("--tls")
    for option, flag in (("ca_path", "--tlscacert"), ("client_cert", "--tlscert"), ("client_key", "--tlskey")):
        if p.get(option):
            argv += [flag, p[option]]
    return argv
