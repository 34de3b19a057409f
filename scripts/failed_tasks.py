# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prints the last failed tasks of an Ansible or molecule log (the play and task of each
`fatal:`/`failed:` line and its message) and the recap lines of hosts that
failed, so that the end of a long CI log says what failed. Tests that expect a failure
(block/rescue) leave failed tasks earlier in the log: the last ones are what stopped it.
scripts/test.sh calls it for a failed stage.

  python3 scripts/failed_tasks.py LOG [--lines 30] [--max 3]
"""

from __future__ import annotations

import argparse
import re

START = re.compile(r"^(fatal|failed): \[")
RECAP_FAILED = re.compile(r"^\S+\s+: ok=\d+ .*(failed=[1-9]|unreachable=[1-9])")
BLOCK_END = re.compile(r"^(TASK|PLAY|RUNNING HANDLER) \[|^(ok|changed|skipping|included|fatal|failed): \[|^\S")


def failures(lines, per_failure=30):
    play = task = ""
    found = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("PLAY ["):
            play = line.rstrip(" *")
        elif line.startswith("TASK ["):
            task = line.rstrip(" *")
        elif START.match(line):
            block = [line]
            j = i + 1
            while j < len(lines) and not BLOCK_END.match(lines[j]) and len(block) < per_failure:
                block.append(lines[j])
                j += 1
            found.append((play, task, block))
        i += 1
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log")
    parser.add_argument("--lines", type=int, default=30, help="lines of each failure's message at most")
    parser.add_argument("--max", type=int, default=3, help="failures shown at most (the last ones)")
    args = parser.parse_args()
    with open(args.log, encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    found = failures(lines, args.lines)
    if not found:
        print("(no failed task in the log: see its last lines)")
        print("\n".join(lines[-20:]))
        return
    for play, task, block in found[-args.max:]:
        print(play)
        print(task)
        print("\n".join(block))
        print()
    recap = [line for line in lines if RECAP_FAILED.search(line)]
    if recap:
        print("recap lines with failed hosts:")
        print("\n".join(recap[-8:]))


if __name__ == "__main__":
    main()
