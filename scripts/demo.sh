#!/usr/bin/env bash
# Brings up the simulated 4-node Spark cluster (containers) and deploys on it.
# Usage (as root, fresh Debian 12 machine): bash scripts/demo.sh
. "$(dirname "$0")/lib.sh"
cd "$REPO"
stage bootstrap bootstrap
stage images build_images
stage "simulated cluster" cluster_up
stage "deploy qwen397b (tiny model)" ansible-playbook -i inventory/simulated playbooks/deploy-qwen397b.yml
summary
