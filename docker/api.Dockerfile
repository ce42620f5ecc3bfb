# The API: FastAPI + uvicorn. It sends tasks by name through contract/ and never imports torch,
# model/ or worker/, so the image has neither.
#   docker build -f docker/api.Dockerfile -t srbvae/api .
# Every image starts from the same slim Python (BASE_IMAGE); without a registry, from a
# stand-in made of Debian packages (docker/standin-base.sh, docs/deploy.md).
ARG BASE_IMAGE=python:3.11.14-slim-bookworm
FROM ${BASE_IMAGE}

# Where pip finds packages: PyPI, or a mirror. A build argument, not kept in the image's
# environment (but shown by `docker history`: no credentials in it).
ARG PIP_INDEX_URL=https://pypi.org/simple

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app

WORKDIR /app

# Dependencies before code: a code change does not reinstall them.
COPY docker/requirements-api.txt /tmp/requirements-api.txt
RUN pip install --no-cache-dir -r /tmp/requirements-api.txt \
    && groupadd --gid 10001 srbvae \
    && useradd --create-home --uid 10001 --gid 10001 --shell /usr/sbin/nologin srbvae

COPY contract/ /app/contract/
COPY service/ /app/service/

USER 10001:10001
EXPOSE 8000

# Liveness only (/healthz): /readyz also needs a worker, and a missing worker is no reason to
# restart the API.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]

# --proxy-headers: behind a reverse proxy, client addresses come from X-Forwarded-For.
CMD ["uvicorn", "service.main:app", "--host", "0.0.0.0", "--port", "8000", "--proxy-headers"]
