# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Units the collection counts in, defined once."""

from __future__ import annotations

GIB = 1024 ** 3  # bytes in a GiB (/proc/meminfo's kB are KiB; memory figures are printed in GiB)
