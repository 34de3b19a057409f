"""Run in a throw-away container of the engine image: print vLLM's version and whether its
own `vllm serve` argument parser accepts each planned command (JSON in the environment
variable SPARKOPS_COMMANDS: [{"node": NAME, "argv": [...]}]). One JSON line on stdout:
{"version": "0.32.0", "ray_version": "2.60.0" or null,
 "nccl": {"pip": [{"name": "nvidia-nccl-cu13", "version": "2.28.9"}], "torch": "2.28.9" or null,
          "system": ["2.28.9"]},
 "commands": [{"node": NAME, "ok": true, "bind": {"host", "port", "api_key": bool}}
              | {..., "ok": false, "error": "..."}]}.
The parser is built the way the `vllm` CLI builds it (vllm/entrypoints/cli/main.py).
"""
import contextlib
import glob
import io
import json
import os
import re
import sys

# where a distribution's NCCL lands (Debian/Ubuntu multiarch, NVIDIA's CUDA images, /usr/local)
SYSTEM_NCCL = ("/usr/lib/*-linux-gnu/libnccl.so.2.*", "/usr/lib64/libnccl.so.2.*", "/usr/local/lib/libnccl.so.2.*",
               "/usr/local/cuda*/lib*/libnccl.so.2.*")


def parser_of_vllm():
    try:
        from vllm.utils.argparse_utils import FlexibleArgumentParser
    except ImportError:  # older vLLM
        from vllm.utils import FlexibleArgumentParser
    from vllm.entrypoints.cli import serve
    parser = FlexibleArgumentParser(prog="vllm")
    subparsers = parser.add_subparsers(required=False, dest="subparser")
    commands = {}
    for cmd in serve.cmd_init():
        cmd.subparser_init(subparsers).set_defaults(dispatch_function=cmd.cmd)
        commands[cmd.name] = cmd
    return parser, commands


def check(parser, commands, argv):
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            args = parser.parse_args(argv[1:])
            commands[args.subparser].validate(args)
    except SystemExit:
        return {"ok": False, "error": err.getvalue().strip().splitlines()[-1] if err.getvalue().strip() else "rejected"}
    except Exception as exc:  # validate() raises ValueError/TypeError on inconsistent arguments
        return {"ok": False, "error": "%s: %s" % (type(exc).__name__, exc)}
    # where the API will listen, and whether a key came through the arguments (it must come
    # through the environment only), as vLLM's own parser read them: an abbreviated flag
    # (--hos=) or a --config file counts
    return {"ok": True, "bind": {"host": getattr(args, "host", None), "port": getattr(args, "port", None),
                                 "api_key": bool(getattr(args, "api_key", None))}}


def nccl():
    """The NCCL builds in the image: the pip wheels' (nvidia-nccl-*, what torch and vLLM load by
    default), the version torch reports (a CUDA build only), and the system libraries' versions
    (libnccl.so.2.X.Y, from the file name)."""
    out = {"pip": [], "torch": None, "system": []}
    try:
        from importlib import metadata
        for dist in metadata.distributions():
            name = (dist.metadata.get("Name") or "").lower()
            if name.startswith("nvidia-nccl"):
                out["pip"].append({"name": name, "version": dist.version})
    except Exception:  # a broken distribution's metadata: no answer, not a failed check
        pass
    try:
        import torch
        if getattr(torch.version, "cuda", None):
            out["torch"] = ".".join(str(n) for n in torch.cuda.nccl.version())
    except Exception:  # a CPU build, or a CUDA build without a usable NCCL
        pass
    found = set()
    for pattern in SYSTEM_NCCL:
        for path in glob.glob(pattern):
            m = re.search(r"libnccl\.so\.(\d+\.\d+\.\d+)$", path)
            if m and not os.path.islink(path):
                found.add(m.group(1))
    out["system"] = sorted(found)
    return out


def main():
    import vllm
    parser, commands = parser_of_vllm()
    planned = json.loads(os.environ["SPARKOPS_COMMANDS"])
    try:
        import ray
        ray_version = ray.__version__
    except ImportError:
        ray_version = None
    print(json.dumps({"version": vllm.__version__, "ray_version": ray_version, "nccl": nccl(),
                      "commands": [dict(check(parser, commands, c["argv"]), node=c["node"]) for c in planned]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
