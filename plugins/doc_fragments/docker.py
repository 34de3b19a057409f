# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The Docker daemon a module that runs the docker CLI talks to (module_utils/_docker):
    # the option names of community.docker, so that one module_defaults serves both.
    DOCUMENTATION = r"""
options:
  docker_host:
    description:
      - The Docker daemon to talk to, as for the community.docker modules (C(unix://), C(tcp://),
        C(ssh://)). Unset, the docker CLI's own default (C(DOCKER_HOST) or the local socket).
    type: str
    aliases: [docker_url]
  tls:
    description: Connect with TLS without verifying the daemon's certificate.
    type: bool
    default: false
  validate_certs:
    description: Connect with TLS and verify the daemon's certificate.
    type: bool
    default: false
    aliases: [tls_verify]
  ca_path:
    description: CA certificate that signed the daemon's certificate.
    type: path
    aliases: [ca_cert, tls_ca_cert, cacert_path]
  client_cert:
    description: Client certificate (TLS).
    type: path
    aliases: [tls_client_cert, cert_path]
  client_key:
    description: Client key (TLS).
    type: path
    aliases: [tls_client_key, key_path]
notes:
  - Set these once for this module and the community.docker modules with
    C(module_defaults) (groups C(group/community.docker.docker) and C(group/sparkops.cluster.docker)).
"""
