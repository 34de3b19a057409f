"""Scans every TCP port of some addresses, as a stranger on the network would: a non-blocking
connect() to each, many in flight at once (epoll). Prints one JSON line per address: the ports
that accepted (open), the ones that answered nothing within the timeout (filtered: a silent
drop, or no answer), and how many were refused (a TCP reset). Run in a container on the network
under test (python3, no deps).

    python3 scan_ports.py ADDRESS [ADDRESS ...]
"""

from __future__ import annotations

import errno
import json
import select
import socket
import sys
import time

TIMEOUT = 3.0      # seconds a connect may take: a reset comes back in well under a second
IN_FLIGHT = 1024   # connects at once (each a file descriptor)
PORTS = range(1, 65536)


def _state(code):
    if code == 0:
        return "open"
    if code == errno.ECONNREFUSED:
        return "refused"
    if code in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return "unreachable"
    return "error:%s" % code


def scan(address):
    start = time.monotonic()
    out = {"address": address, "open": [], "filtered": [], "other": {}, "refused": 0}

    def record(port, state):
        if state == "refused":
            out["refused"] += 1
        elif state in ("open", "filtered"):
            out[state].append(port)
        else:
            out["other"].setdefault(state, []).append(port)

    poller = select.epoll()
    pending = {}  # fd -> (socket, port, deadline)
    ports = iter(PORTS)
    exhausted = False
    try:
        while pending or not exhausted:
            while not exhausted and len(pending) < IN_FLIGHT:
                port = next(ports, None)
                if port is None:
                    exhausted = True
                    break
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setblocking(False)
                code = sock.connect_ex((address, port))
                if code in (errno.EINPROGRESS, errno.EAGAIN):
                    pending[sock.fileno()] = (sock, port, time.monotonic() + TIMEOUT)
                    poller.register(sock.fileno(), select.EPOLLOUT | select.EPOLLERR | select.EPOLLHUP)
                else:
                    record(port, _state(code))
                    sock.close()
            for fd, _events in poller.poll(0.2):
                sock, port, _deadline = pending.pop(fd)
                poller.unregister(fd)
                record(port, _state(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)))
                sock.close()
            now = time.monotonic()
            for fd in [fd for fd, (_s, _p, deadline) in pending.items() if deadline < now]:
                sock, port, _deadline = pending.pop(fd)
                poller.unregister(fd)
                record(port, "filtered")
                sock.close()
    finally:
        for sock, _port, _deadline in pending.values():
            sock.close()
        poller.close()
    for key in ("open", "filtered"):
        out[key].sort()
    out["seconds"] = round(time.monotonic() - start, 1)
    return out


def main():
    for address in sys.argv[1:]:
        print(json.dumps(scan(address)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
