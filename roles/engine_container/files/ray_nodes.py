# Printed by the engine_container role in the head's engine container: every node Ray knows,
# with its address, liveness and resources (Ray's own API; no dashboard needed).
import json

import ray

ray.init(address="auto", logging_level="ERROR", log_to_driver=False)
print(json.dumps(ray.nodes(), default=str))
