"""All-reduce bus bandwidth across the nodes, run in every node's engine container.

The nccl-tests arithmetic (all_reduce_perf): algorithm bandwidth = bytes / time, bus
bandwidth = algbw x 2 (n - 1) / n. NCCL on GPUs; Gloo on a CPU-only build (the
simulated cluster). Rank 0 prints one JSON line. Environment: RANK, WORLD_SIZE,
MASTER_ADDR, MASTER_PORT, SIZE_BYTES, ITERS, WARMUP, TIMEOUT_S; NCCL_* / GLOO_* select
the rails as they do for vLLM.
"""
import datetime
import json
import os
import sys
import time

import torch
import torch.distributed as dist


def main():
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    size, iters, warmup = int(os.environ["SIZE_BYTES"]), int(os.environ["ITERS"]), int(os.environ["WARMUP"])
    gpu = torch.cuda.is_available()
    backend = "nccl" if gpu else "gloo"
    if gpu:
        torch.cuda.set_device(0)
    dist.init_process_group(backend, init_method="tcp://%s:%s" % (os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"]),
                            rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=int(os.environ.get("TIMEOUT_S", "300"))))
    device = "cuda" if gpu else "cpu"

    def sync():
        if gpu:
            torch.cuda.synchronize()

    # correctness first: every element of the sum of (rank + 1) is n (n + 1) / 2
    check = torch.full((1024,), float(rank + 1), device=device)
    dist.all_reduce(check)
    correct = bool((check == world * (world + 1) / 2).all().item())
    data = torch.ones(size // 4, dtype=torch.float32, device=device)
    for _i in range(warmup):
        dist.all_reduce(data)
    sync()
    dist.barrier()
    started = time.perf_counter()
    for _i in range(iters):
        dist.all_reduce(data)
    sync()
    elapsed = (time.perf_counter() - started) / iters
    times = [None] * world
    dist.all_gather_object(times, elapsed)
    slowest = max(times)  # an all-reduce is done when the last rank is
    if rank == 0:
        algbw = size / slowest / 1e9
        print(json.dumps({"backend": backend, "world_size": world, "size_bytes": size, "iters": iters,
                          "time_s": round(slowest, 6), "algbw_gbs": round(algbw, 3),
                          "busbw_gbs": round(algbw * 2 * (world - 1) / world, 3), "correct": correct,
                          "torch": torch.__version__}))
    dist.destroy_process_group()
    return 0 if correct else 1


if __name__ == "__main__":
    sys.exit(main())
