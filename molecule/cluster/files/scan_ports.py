"""Scans every TCP port of some addresses, as a stranger on the network would: a connect() to
each, many at once. Prints one JSON line per address: the ports that accepted (open), the ones
that answered nothing within the timeout (filtered: a silent drop, or no answer), and how many
were refused (a TCP reset). Run in a container on the network under test (python3, no deps).

    python3 scan_ports.py ADDRESS [ADDRESS ...]
"""

from __future__ import annotations

import asyncio
import errno
import json
import sys
import time

TIMEOUT = 3.0      # seconds a connect may take: a reset comes back in well under a second
CONCURRENCY = 512  # connects in flight


async def probe(address, port, sem):
    async with sem:
        try:
            _reader, writer = await asyncio.wait_for(asyncio.open_connection(address, port), TIMEOUT)
        except asyncio.TimeoutError:
            return port, "filtered"
        except ConnectionRefusedError:
            return port, "refused"
        except OSError as exc:
            if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
                return port, "unreachable"
            return port, "refused" if exc.errno == errno.ECONNREFUSED else "error:%s" % exc.errno
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass
        return port, "open"


async def scan(address):
    sem = asyncio.Semaphore(CONCURRENCY)
    start = time.monotonic()
    results = await asyncio.gather(*(probe(address, port, sem) for port in range(1, 65536)))
    out = {"address": address, "open": [], "filtered": [], "other": {}, "refused": 0}
    for port, state in results:
        if state == "refused":
            out["refused"] += 1
        elif state in ("open", "filtered"):
            out[state].append(port)
        else:
            out["other"].setdefault(state, []).append(port)
    out["seconds"] = round(time.monotonic() - start, 1)
    return out


def main():
    for address in sys.argv[1:]:
        print(json.dumps(asyncio.run(scan(address))), flush=True)


if __name__ == "__main__":
    main()
