# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Errors shared by the sparkops.cluster parsers and planners."""

from __future__ import annotations


class ToolOutputError(ValueError):
    """A tool printed something we cannot parse; the message quotes the line."""

    def __init__(self, tool, reason, line=None, lineno=None):
        self.tool = tool
        self.line = line
        self.lineno = lineno
        where = ""
        if line is not None:
            where = " at line %s: %r" % (lineno, line) if lineno else ": %r" % (line,)
        super().__init__("cannot parse %s output%s (%s)" % (tool, where, reason))
