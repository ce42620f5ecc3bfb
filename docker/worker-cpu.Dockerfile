# The worker for machines without a GPU: slim Python base, torch's CPU wheel (no CUDA libraries).
#   docker build -f docker/worker-cpu.Dockerfile -t srbvae/worker-cpu .
FROM python:3.11.14-slim-bookworm

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG TORCH_VERSION=2.13.0

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    SRBVAE_WORKER_DEVICE=cpu

WORKDIR /app

RUN pip install --no-cache-dir --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}" \
    && groupadd --gid 10001 srbvae \
    && useradd --create-home --uid 10001 --gid 10001 --shell /usr/sbin/nologin srbvae
COPY docker/requirements-worker.txt /tmp/requirements-worker.txt
RUN pip install --no-cache-dir -r /tmp/requirements-worker.txt

COPY contract/ /app/contract/
COPY model/ /app/model/
COPY worker/ /app/worker/
COPY docker/healthcheck_worker.py /app/docker/healthcheck_worker.py

USER 10001:10001

HEALTHCHECK --interval=15s --timeout=10s --start-period=120s --retries=3 \
    CMD ["python", "/app/docker/healthcheck_worker.py"]

STOPSIGNAL SIGTERM
CMD ["python", "-m", "worker"]
