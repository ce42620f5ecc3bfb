# The worker: contract/, model/, photos/, worker/ and torch, on the same slim Python as the API.
#   docker build -f docker/worker.Dockerfile -t srbvae/worker .                  # CUDA (GPU nodes)
#   docker build -f docker/worker.Dockerfile -t srbvae/worker-cpu \
#       --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu .    # CPU only
# No CUDA base image: PyPI's torch wheels for Linux bring the CUDA runtime libraries as
# nvidia-* packages, and the NVIDIA container toolkit on the host brings the driver
# (docker-compose.yml reserves the GPU). torch's CPU index has wheels without those libraries.
ARG BASE_IMAGE=python:3.11.14-slim-bookworm
FROM ${BASE_IMAGE}

# Build arguments, not kept in the image's environment (`docker history` shows them: no
# credentials in a URL).
ARG PIP_INDEX_URL=https://pypi.org/simple
ARG TORCH_INDEX_URL=${PIP_INDEX_URL}
ARG TORCH_VERSION=2.13.0

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app

WORKDIR /app

# torch first and alone: the largest layer, rebuilt only when its version or index changes.
RUN pip install --no-cache-dir --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}" \
    && groupadd --gid 10001 srbvae \
    && useradd --create-home --uid 10001 --gid 10001 --shell /usr/sbin/nologin srbvae
COPY docker/requirements-worker.txt /tmp/requirements-worker.txt
RUN pip install --no-cache-dir -r /tmp/requirements-worker.txt

COPY contract/ /app/contract/
COPY model/ /app/model/
COPY photos/ /app/photos/
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
