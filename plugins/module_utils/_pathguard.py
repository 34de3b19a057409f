# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether root may write into a directory without another user steering it elsewhere:
every component of the path, from /, must be a real directory (no symbolic link on the way),
owned by root, and writable by no one else (a root-owned directory with the sticky bit, such
as /tmp, may be writable by all: no one can then rename what root owns in it). A user who
owns a component, or may write into one, can swap what follows for a link to a system
directory between a check and a copy (a root `rsync --delete` into it).

Standard library only: the modules import it, and the roles install this same file on the
nodes as the guard of the copy's forced command and rsync daemon (pre-xfer exec):

    python3 _pathguard.py DIR [PROGRAM ARG...]   # exit 1 naming the problem, else run PROGRAM
"""

from __future__ import annotations

import os
import stat
import sys


def problems(path, lstat=os.lstat):
    """What makes `path` unsafe for root to write into, in words ([] when safe). Components
    below the deepest existing one are not looked at (root creates them)."""
    if not isinstance(path, str) or not os.path.isabs(path):
        return ["%r is not an absolute path" % (path,)]
    path = os.path.normpath(path)
    out, current = [], "/"
    parts = [p for p in path.split("/") if p]
    for part in [""] + parts:
        current = os.path.join(current, part) if part else "/"
        try:
            st = lstat(current)
        except FileNotFoundError:
            break
        except OSError as exc:
            out.append("%s cannot be read (%s)" % (current, exc.strerror or exc))
            break
        if stat.S_ISLNK(st.st_mode):
            out.append("%s is a symbolic link" % current)
            break
        if not stat.S_ISDIR(st.st_mode):
            out.append("%s is not a directory" % current)
            break
        if st.st_uid != 0:
            out.append("%s is owned by uid %d, not root" % (current, st.st_uid))
        writable = [who for who, bit in (("its group", stat.S_IWGRP), ("everyone", stat.S_IWOTH)) if st.st_mode & bit]
        if writable and not (st.st_mode & stat.S_ISVTX and st.st_uid == 0):
            out.append("%s is writable by %s (mode %04o)" % (current, " and ".join(writable), stat.S_IMODE(st.st_mode)))
    return out


def main(argv):
    if len(argv) < 2:
        sys.stderr.write("usage: %s DIR [PROGRAM ARG...]\n" % argv[0])
        return 2
    found = problems(argv[1])
    if found:
        sys.stderr.write("sparkops.cluster: refused to write into %s: %s\n" % (argv[1], "; ".join(found)))
        return 1
    if len(argv) > 2:
        os.execv(argv[2], argv[2:])
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
