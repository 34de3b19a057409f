"""All-reduce bus bandwidth across the nodes, one rank per GPU, run in every node's engine
container (the sparkops.cluster.fabric_check role).

The nccl-tests arithmetic (all_reduce_perf): algorithm bandwidth = bytes / time, bus
bandwidth = algbw x 2 (n - 1) / n, n the number of ranks. NCCL on GPUs, one process per
GPU of the node (local rank = GPU index, global rank = node rank x GPUs per node + local
rank); Gloo and one process per node on a CPU-only build (the simulated cluster). Global
rank 0 prints one JSON line; "correct" says whether the buffer of the timed size, filled with
known values per rank and reduced once more, holds the exact sum in every element.

Environment: NODE_RANK, NNODES, GPUS_PER_NODE (0: every GPU torch sees, or one CPU rank),
MASTER_ADDR, MASTER_PORT, SIZE_BYTES, ITERS, WARMUP, TIMEOUT_S; NCCL_* / GLOO_* select the
rails as they do for vLLM.
"""
import datetime
import json
import os
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def settings():
    local = int(os.environ.get("GPUS_PER_NODE", "0")) or (torch.cuda.device_count() if torch.cuda.is_available() else 1)
    return {"node": int(os.environ["NODE_RANK"]), "nodes": int(os.environ["NNODES"]), "local": local,
            "gpu": torch.cuda.is_available(), "size": int(os.environ["SIZE_BYTES"]), "iters": int(os.environ["ITERS"]),
            "warmup": int(os.environ["WARMUP"]), "timeout": int(os.environ.get("TIMEOUT_S", "300")),
            "init": "tcp://%s:%s" % (os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"])}


def run(local_rank, cfg, results):
    world = cfg["nodes"] * cfg["local"]
    rank = cfg["node"] * cfg["local"] + local_rank
    gpu = cfg["gpu"]
    if gpu:
        torch.cuda.set_device(local_rank)
    device = torch.device("cuda", local_rank) if gpu else torch.device("cpu")
    # the rank's GPU named to NCCL (its barrier otherwise guesses it, and warns)
    dist.init_process_group("nccl" if gpu else "gloo", init_method=cfg["init"], rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=cfg["timeout"]), **({"device_id": device} if gpu else {}))

    def sync():
        if gpu:
            torch.cuda.synchronize(device)

    data = torch.ones(cfg["size"] // 4, dtype=torch.float32, device=device)
    for _i in range(cfg["warmup"]):
        dist.all_reduce(data)
    sync()
    dist.barrier()
    started = time.perf_counter()
    for _i in range(cfg["iters"]):
        dist.all_reduce(data)
    sync()
    elapsed = (time.perf_counter() - started) / cfg["iters"]
    # the timed buffer itself, reduced once more from known values: every element of the sum of
    # (rank + 1) over the ranks is n (n + 1) / 2, exact in float32 for any world this runs
    data.fill_(float(rank + 1))
    dist.all_reduce(data)
    sync()
    correct = bool((data == world * (world + 1) / 2).all().item())
    times = [None] * world
    dist.all_gather_object(times, elapsed)
    slowest = max(times)  # an all-reduce is done when the last rank is
    flags = [None] * world
    dist.all_gather_object(flags, correct)
    if rank == 0:
        algbw = cfg["size"] / slowest / 1e9
        results.put({"backend": "nccl" if gpu else "gloo", "nodes": cfg["nodes"], "gpus_per_node": cfg["local"] if gpu else 0,
                     "world_size": world, "size_bytes": cfg["size"], "iters": cfg["iters"], "time_s": round(slowest, 6),
                     "algbw_gbs": round(algbw, 3), "busbw_gbs": round(algbw * 2 * (world - 1) / world, 3),
                     "correct": all(flags), "torch": torch.__version__})
    dist.destroy_process_group()


def main():
    cfg = settings()
    results = mp.get_context("spawn").SimpleQueue()
    if cfg["gpu"] and cfg["local"] > 1:
        mp.spawn(run, args=(cfg, results), nprocs=cfg["local"], join=True)
    else:
        run(0, cfg, results)
    if cfg["node"] == 0:
        out = results.get()
        print(json.dumps(out))
        return 0 if out["correct"] else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
