# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

# Each filter's documentation is in the .yml file of its name beside this one.


def unit_text(value):
    """Text for a systemd unit setting such as Description=: one line (a control character,
    newlines included, becomes a space), a '%' doubled (systemd expands specifiers in it) and a
    backslash doubled (systemd reads C escapes there), so a value can never end the setting and
    start another (a newline and 'ExecStartPre=' would)."""
    out = []
    for char in str(value):
        if ord(char) < 0x20 or ord(char) == 0x7f:
            out.append(" ")
        elif char in "%\\":
            out.append(char * 2)
        else:
            out.append(char)
    return "".join(out)


def unit_arg(value):
    """One argument of a systemd unit's command line (ExecStart=): double-quoted, with backslash,
    double quote and control characters as C escapes, '%' and '$' doubled (systemd's specifiers
    and variables), so that it stays one argument on one line whatever it holds."""
    out = []
    for char in str(value):
        if char in '\\"':
            out.append("\\" + char)
        elif char in "%$":
            out.append(char * 2)
        elif ord(char) < 0x20 or ord(char) == 0x7f:
            out.append("\\x%02x" % ord(char))
        else:
            out.append(char)
    return '"%s"' % "".join(out)


class FilterModule:
    def filters(self):
        return {"unit_text": unit_text, "unit_arg": unit_arg}
