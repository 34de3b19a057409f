#!/usr/bin/env bash
# Experiment for #17: vLLM CPU with the Ray executor across two containers (TP=2), CPUPlatform
# given ray_device_key "GPU" by the image's patch (vllm-cpu-ray.patch).
set -u
net=sparkops-exp17
img=${1:-sparkops/engine:latest}
docker rm -f exp17-head exp17-worker >/dev/null 2>&1; docker network rm $net >/dev/null 2>&1
docker network create --subnet 172.31.77.0/24 $net >/dev/null
for n in head worker; do
  ip=172.31.77.$([ $n = head ] && echo 10 || echo 11)
  docker run -d --name exp17-$n --network $net --ip $ip --shm-size 1g -e VLLM_HOST_IP=$ip -e GLOO_SOCKET_IFNAME=eth0 $img sleep infinity >/dev/null
done
docker exec exp17-head python3 -c 'from vllm.platforms.cpu import CpuPlatform; print("ray_device_key", CpuPlatform.ray_device_key)'
docker exec exp17-head ray start --head --node-ip-address=172.31.77.10 --num-gpus=1 --num-cpus=1 --disable-usage-stats >/dev/null 2>&1
docker exec exp17-worker ray start --address=172.31.77.10:6379 --node-ip-address=172.31.77.11 --num-gpus=1 --num-cpus=1 --disable-usage-stats >/dev/null 2>&1
docker exec exp17-head ray status 2>&1 | grep -E "node_|GPU|CPU" | head
docker exec -d exp17-head sh -c 'vllm serve /models/sparkops-tiny-qwen --served-model-name tiny --tensor-parallel-size 2 --distributed-executor-backend ray --enforce-eager --dtype bfloat16 --max-model-len 512 > /tmp/serve.log 2>&1'
for i in $(seq 1 90); do
  if docker exec exp17-head curl -sf http://127.0.0.1:8000/health >/dev/null 2>&1; then echo "healthy after $((i*5)) s"; break; fi
  if ! docker exec exp17-head pgrep -f "vllm serve" >/dev/null; then echo "vllm serve exited"; break; fi
  sleep 5
done
docker exec exp17-head curl -s http://127.0.0.1:8000/v1/completions -H 'Content-Type: application/json' -d '{"model":"tiny","prompt":"Hello","max_tokens":8,"ignore_eos":true}'; echo
docker exec exp17-head sh -c 'grep -iE "error|Traceback|rank|worker|placement|Exception" /tmp/serve.log | tail -40'
docker exec exp17-worker sh -c 'ps aux | grep -i -E "ray::|vllm|Worker" | grep -v grep | head'
