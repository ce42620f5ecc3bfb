# The worker for GPU nodes: CUDA runtime base, torch's CUDA wheel. Run it with the NVIDIA
# container toolkit (docker-compose.yml reserves the GPU). CPU-only machines: worker-cpu.Dockerfile.
#   docker build -f docker/worker.Dockerfile -t srbvae/worker .
# The CUDA base and torch's wheel index go together: change both (e.g. 12.6 and cu126).
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-runtime-ubuntu24.04
FROM ${CUDA_IMAGE}

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
ARG TORCH_VERSION=2.13.0

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    PATH=/opt/venv/bin:$PATH \
    SRBVAE_WORKER_DEVICE=cuda

# Ubuntu's Python (3.12 on 24.04) in a virtual environment: PEP 668 forbids pip into the system.
# Unpinned apt versions: the base image tag fixes the release, and Ubuntu's archive drops
# superseded versions, so exact pins would break rebuilds.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/venv \
    && groupadd --gid 10001 srbvae \
    && useradd --create-home --uid 10001 --gid 10001 --shell /usr/sbin/nologin srbvae

WORKDIR /app

# torch first and alone: the largest layer, rebuilt only when its version or index changes.
RUN pip install --no-cache-dir --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}"
COPY docker/requirements-worker.txt /tmp/requirements-worker.txt
RUN pip install --no-cache-dir -r /tmp/requirements-worker.txt

COPY contract/ /app/contract/
COPY model/ /app/model/
COPY worker/ /app/worker/
COPY docker/healthcheck_worker.py /app/docker/healthcheck_worker.py

# Checkpoints are mounted read-only at /app/models (one directory per model), never baked in.
USER 10001:10001

# Healthy once the worker has loaded its models and announced itself consuming its queue.
HEALTHCHECK --interval=15s --timeout=10s --start-period=120s --retries=3 \
    CMD ["python", "/app/docker/healthcheck_worker.py"]

# The supervisor restarts a crashed worker process itself; Docker's restart policy covers the
# supervisor. SIGTERM is a warm shutdown: running jobs finish.
STOPSIGNAL SIGTERM
CMD ["python", "-m", "worker"]
