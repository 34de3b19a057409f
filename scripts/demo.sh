#!/usr/bin/env bash
# Brings up the simulated 4-node Spark cluster (containers) and deploys on it.
# Usage (as root, fresh Debian 12 machine): bash scripts/demo.sh
. "$(dirname "$0")/lib.sh"
cd "$REPO"
# The API binds to 127.0.0.1 on the head (sparkops_api_host), which in the simulated
# cluster is the loopback of the node container spark-alpha: ask it from there.
ASK='docker exec spark-alpha curl -s http://127.0.0.1:8000/v1/models'
ask() {
  echo "from this machine: $ASK"
  $ASK | python3 -c 'import json, sys; d = json.load(sys.stdin)["data"][0]; print("served:", d["id"], "from", d["root"])'
}
stage bootstrap bootstrap
stage images build_images
stage "simulated cluster" cluster_up
stage "deploy qwen397b (tiny model)" ansible-playbook -i inventory/simulated playbooks/deploy-qwen397b.yml
stage "ask the API" ask
summary
