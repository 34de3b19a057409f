#!/usr/bin/env bash
# Benchmarks on the simulated cluster (not a test: it measures, it does not judge).
# Usage (as root, on the machine the simulated nodes run on):
#   bash scripts/bench.sh sync [ansible-playbook -e options]
#     the weights distribution (scripts/bench/sync.yml): benchmarks/sync-<UTC time>.json and .png
#   bash scripts/bench.sh scale [N ...]
#     the deploy from scratch, a second deploy and the teardown at 4 and 8 nodes (or N ...,
#     2 to 8; scripts/bench/scale.py): benchmarks/scale-<UTC time>.json and .png
#   bash scripts/bench.sh coldstart [BALLAST_GIB [SHARDS [VAR=VALUE ...]]]
#     clean nodes to the first token, every phase on every node, with BALLAST_GIB (8) of
#     safetensors shards copied and checked beside the tiny model (scripts/bench/coldstart.py):
#     benchmarks/coldstart-<UTC time>.json and .png
#   bash scripts/bench.sh serving [ansible-playbook -e options]
#     our serving benchmark against vllm bench serve on the served simulated cluster
#     (scripts/bench/serving.yml): benchmarks/serving-<UTC time>.json and .png
. "$(dirname "$0")/lib.sh"
cd "$REPO"
what=${1:-}; shift || true
case $what in
  sync|scale|coldstart|serving) ;;
  *)
    echo "usage: bash scripts/bench.sh sync [-e bench_mib=256 -e bench_files=8 ...] | scale [N ...] | coldstart [GIB [SHARDS [VAR=VALUE ...]]] | serving [-e bench_requests=32 ...]" >&2
    exit 2
    ;;
esac
stage bootstrap bootstrap
stage images build_images
stem=$REPO/benchmarks/$what-$(date -u +%Y%m%dT%H%M%SZ)
raw=$CACHE/bench-$what-raw.json
case $what in
  sync)
    stage "simulated cluster" cluster_up
    stage "weights distribution" ansible-playbook -i inventory/simulated scripts/bench/sync.yml -e sparkops_recipe=qwen397b -e "bench_out=$raw" "$@"
    ;;
  scale)
    # the deploy at 4 and 8 nodes (or the sizes given): molecule's cluster makes room first
    stage "molecule's cluster removed" molecule destroy -s cluster
    stage "deploy at ${*:-4 8} nodes" python3 scripts/bench/scale.py "$raw" ${@:-4 8}
    ;;
  coldstart)
    # a fresh cluster of its own: molecule's cluster makes room first
    stage "molecule's cluster removed" molecule destroy -s cluster
    stage "cold start" python3 scripts/bench/coldstart.py "$raw" "$@"
    ;;
  serving)
    # our benchmark and vllm bench serve on the served simulated cluster (deployed if needed)
    stage "simulated cluster" cluster_up
    stage deploy ansible-playbook -i inventory/simulated playbooks/deploy-qwen397b.yml
    stage "ours and vllm bench serve" ansible-playbook -i inventory/simulated scripts/bench/serving.yml -e sparkops_recipe=qwen397b -e "bench_out=$raw" "$@"
    ;;
esac
stage report python3 scripts/bench_report.py "$raw" "$stem"
summary
