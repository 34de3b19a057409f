"""sparkops.cluster watchdog (roles/watchdog), run by sparkops-watchdog.timer on every node:

    python3 sparkops-watchdog.py CONFIG

One check of this node, bounded: the engine container and its processes (a stopped or gone
rank), the kernel's log since the last check (the known-failures rows' kernel patterns),
and on the head a short real completion through the API (not /health: a stalled engine
still answers it). What it finds is an incident, written once as JSON under the incident
directory with what it read at the moment (the rank's last log lines, the node's memory)
and the known-failures row that names it and its fix. A rank's or the probe's finding is
recorded when the next check sees it again (a deploy that restarts the engine passes
within one period); a kernel line at once. It reads only this node and its own API: no
access to another node.

Python 3 of the node, standard library only, and _watchdog.py beside it (the collection's
plugins/module_utils/_watchdog.py, as the role installs it). Every program it runs has a
bound and its process group is killed at the bound; tool output is read as bytes.
"""

import datetime
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _watchdog  # noqa: E402  (installed beside this program)

MEMINFO_KEYS = ("MemTotal", "MemAvailable", "Cached", "Shmem", "SwapFree")


def run(argv, timeout):
    """(rc, stdout bytes, stderr text) of a program run with a bound; its whole process
    group killed at the bound (rc None)."""
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    except OSError as exc:
        return None, b"", "cannot run %s: %s" % (argv[0], exc.strerror)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        proc.communicate()
        return None, b"", "%s gave no answer within %d s" % (argv[0], timeout)
    return proc.returncode, out, err.decode("utf-8", "replace").strip()[-300:]


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def load_state(path):
    try:
        with open(path) as fh:
            state = json.load(fh)
        return state if isinstance(state, dict) else {}
    except (OSError, ValueError):
        return {}


def write_json(path, data, mode=0o640):
    """Written whole or not at all (a temporary file renamed)."""
    os.makedirs(os.path.dirname(path), mode=0o750, exist_ok=True)
    tmp = "%s.%d.tmp" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, path)


def kernel_lines(state, config):
    """The kernel's log since the last check (journalctl's cursor; the first check reads one
    period back), and a note when it could not be read."""
    argv = ["journalctl", "-k", "--no-pager", "-o", "short-iso", "--show-cursor"]
    if state.get("cursor"):
        argv += ["--after-cursor", state["cursor"]]
    else:
        argv += ["--since", "@%d" % int(time.time() - config["period_s"])]
    rc, out, err = run(argv, config["command_timeout"])
    if rc != 0:
        return [], "the kernel's log was not read: %s" % (err or "rc %s" % rc)
    lines = []
    for line in out.decode("utf-8", "replace").splitlines():
        if line.startswith("-- cursor: "):
            state["cursor"] = line[len("-- cursor: "):].strip()
        elif line and not line.startswith("-- "):
            lines.append(line)
    return lines, None


def engine_findings(config):
    """[finding] of the engine container and its processes, and the processes read."""
    container = config["container"]
    rc, out, err = run(["docker", "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", container],
                       config["command_timeout"])
    status = out.decode("utf-8", "replace").split() if rc == 0 else []
    if not status or status[0] != "running":
        why = "%s (exit code %s)" % (status[0], status[1]) if len(status) == 2 else (err or "absent")
        return [{"watch": "engine_down", "kind": "engine container %s" % container, "state": why}], []
    rc, out, err = run(["docker", "exec", container, "sh", "-c", _watchdog.PROC_PROBE], config["command_timeout"])
    if rc != 0:
        return [], []  # a container that stops while it is read: the next check finds it down
    procs = _watchdog.engine_processes(out.decode("utf-8", "replace"))
    return _watchdog.rank_findings(procs, config["serves"], config["executor"], config["world"]), procs


def probe(config):
    """(ok, detail) of a short real completion through this node's API, bounded."""
    spec = config["probe"]
    body = json.dumps({"model": spec["model"], "messages": [{"role": "user", "content": spec["prompt"]}],
                       "max_tokens": spec["max_tokens"], "temperature": 0}).encode()
    headers = {"Content-Type": "application/json"}
    if spec.get("key_file"):
        try:
            with open(spec["key_file"]) as fh:
                headers["Authorization"] = "Bearer " + fh.read().strip()
        except OSError as exc:
            return False, "the API key file %s cannot be read: %s" % (spec["key_file"], exc.strerror)
    request = urllib.request.Request(spec["url"], data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=spec["timeout"]) as answer:
            return _watchdog.probe_verdict(answer.status, answer.read(65536))
    except urllib.error.HTTPError as exc:
        return _watchdog.probe_verdict(exc.code, exc.read(4096))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return _watchdog.probe_verdict(None, getattr(exc, "reason", exc))


def log_tail(config):
    """The rank's last log lines: vllm serve's log where this node runs it, else the
    container's own output (Ray's worker)."""
    container, n = config["container"], str(config["log_lines"])
    path = config["state_dir"] + "/vllm.log"
    rc, out, _err = run(["docker", "exec", container, "tail", "-n", n, path], config["command_timeout"])
    if rc != 0:
        rc, out, _err = run(["docker", "logs", "--tail", n, container], config["command_timeout"])
    return out.decode("utf-8", "replace").splitlines()[-config["log_lines"]:] if rc == 0 else []


def memory():
    """The node's memory at the moment, kB, from /proc/meminfo."""
    found = {}
    try:
        with open("/proc/meminfo", "rb") as fh:
            for raw in fh.read().decode("utf-8", "replace").splitlines():
                key, rest = raw.partition(":")[::2]
                value = rest.split()
                if key in MEMINFO_KEYS and value and value[0].isdigit():
                    found[key + "_kb"] = int(value[0])
    except OSError:
        pass
    return found


def restart(config, state):
    """Restart the serve unit (persistent mode, when asked), at most restart_max times a day."""
    spec = config.get("restart")
    if not spec:
        return None
    now = time.time()
    allowed, done = _watchdog.restart_allowed(state.get("restarts"), now, spec["max"])
    if not allowed:
        state["restarts"] = done
        return "not restarted: %d restart(s) of %s in the last day already (restart_max)" % (len(done), spec["unit"])
    rc, _out, err = run(["systemctl", "restart", "--no-block", spec["unit"]], config["command_timeout"])
    state["restarts"] = done + [now]
    return "restarted %s" % spec["unit"] if rc == 0 else "restart of %s failed: %s" % (spec["unit"], err)


def check(config):
    state = load_state(config["state_file"])
    when = now_iso()
    lines, kernel_note = kernel_lines(state, config)
    kernel = _watchdog.kernel_matches(lines, _watchdog.compile_rows(config["rows"]))
    findings, _procs = engine_findings(config)
    verdict = probe(config) if config.get("probe") else None
    lasting = _watchdog.incident(config["host"], when, findings, [], verdict, config["rows"])
    key = _watchdog.incident_key(lasting)
    record = None
    if kernel:
        record = _watchdog.incident(config["host"], when, findings, kernel, verdict, config["rows"])
    elif key is not None and key != state.get("open"):
        if key == state.get("pending") or config["confirm_runs"] <= 1:
            record = lasting
        else:
            print("watchdog %s: seen once, recorded if the next check sees it again: %s"
                  % (config["host"], _watchdog.summary(lasting)))
    state["pending"] = key if record is None and key != state.get("open") else None
    state["open"] = key if (record is not None or key == state.get("open")) else None
    if record is not None:
        record["log_tail"] = log_tail(config)
        record["memory"] = memory()
        if kernel_note:
            record["note"] = kernel_note
        if verdict is not None and not verdict[0]:
            record["action"] = restart(config, state)
        name = "%s-%s.json" % (when.replace(":", "").replace("-", ""), config["host"])
        write_json(os.path.join(config["incident_dir"], name), record)
        state["open_file"] = name
        print("watchdog %s: incident %s: %s" % (config["host"], name, _watchdog.summary(record)))
    elif key is not None and key == state.get("open"):
        since = state.get("open_file", "an earlier check")
        print("watchdog %s: the incident of %s goes on: %s" % (config["host"], since, _watchdog.summary(lasting)))
    elif key is None:
        probe_note = " (probe: %s)" % verdict[1] if verdict else ""
        print("watchdog %s: healthy%s%s" % (config["host"], probe_note, "; " + kernel_note if kernel_note else ""))
    write_json(config["state_file"], state, mode=0o600)
    return 0


REQUIRED = ("host", "container", "state_dir", "serves", "executor", "world", "rows", "incident_dir", "state_file",
            "period_s", "confirm_runs", "log_lines", "command_timeout")


def main(args):
    if len(args) != 1:
        sys.stderr.write("usage: sparkops-watchdog.py CONFIG\n")
        return 2
    try:
        with open(args[0]) as fh:
            config = json.load(fh)
        missing = [k for k in REQUIRED if k not in config]
        if missing:
            raise ValueError("lacks %s" % ", ".join(missing))
        _watchdog.compile_rows(config["rows"])
    except (OSError, ValueError) as exc:
        sys.stderr.write("sparkops-watchdog: the configuration %s is not usable: %s; deploy again with "
                         "sparkops_watchdog on (the watchdog role writes it)\n" % (args[0], exc))
        return 2
    return check(config)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
