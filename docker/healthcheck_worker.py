"""Docker healthcheck of a worker container: exit 0 when a live process of this container's
worker announces itself in the registry, still consuming its queue.

The worker names itself after the host name, which Docker sets to the container id, so each
replica checks its own entry. Standard library, redis and the contract only: no torch.
"""

import os
import socket
import sys

from contract.redis_url import sync_client
from contract.registry import INDEX_KEY, parse_workers, registry_ids, worker_key

name = os.environ.get("SRBVAE_WORKER_NAME") or socket.gethostname()
url = os.environ.get("SRBVAE_WORKER_REDIS_URL", "redis://127.0.0.1:6379/0")
master = os.environ.get("SRBVAE_WORKER_REDIS_MASTER_NAME", "srbvae")
client = sync_client(url, master, socket_timeout=3, socket_connect_timeout=3)
ids = registry_ids(client.zrange(INDEX_KEY, 0, -1), name)
if any(
    w.consuming for w in parse_workers(client.mget([worker_key(i) for i in ids]) if ids else [])
):
    sys.exit(0)
print(f"no consuming worker {name}.* in the registry at {url.split('@')[-1]}", file=sys.stderr)
sys.exit(1)
