# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

# Each filter's documentation is in the .yml file of its name beside this one.

from ansible_collections.sparkops.cluster.plugins.plugin_utils._secrets import has_secrets, keyed_hash, mask


class FilterModule:
    def filters(self):
        return {"mask_secrets": mask, "has_secrets": has_secrets, "keyed_hash": keyed_hash}
