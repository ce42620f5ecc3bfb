"""docker-compose.yml as Compose resolves it. No Docker engine runs here, so Debian's
docker-compose (v1.29, which knows profiles and GPU reservations) validates and interpolates
the file; the assertions read its resolved output."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "0123456789abcdef0123456789abcdef"


def compose(*args: str, **env: str) -> subprocess.CompletedProcess:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("docker-compose not found: apt-get install docker-compose (.ci/run does)")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "COMPOSE_"))}
    return subprocess.run(
        [binary, "--project-directory", str(REPO_ROOT), "-f", "docker-compose.yml", *args],
        cwd=REPO_ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.fixture(scope="module")
def config() -> dict:
    result = compose("--profile", "cpu", "config", REDIS_PASSWORD=PASSWORD)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_config_requires_redis_password():
    result = compose("config")
    assert result.returncode != 0
    assert "REDIS_PASSWORD" in result.stderr


def test_services(config):
    assert set(config["services"]) == {"redis", "api", "worker", "worker-cpu"}


def test_every_service_has_healthcheck_and_restart_policy(config):
    for name, service in config["services"].items():
        assert service["healthcheck"]["test"], name
        assert service["restart"] == "unless-stopped", name


def test_redis_persists_refuses_eviction_and_is_not_published(config):
    redis = config["services"]["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    assert command[command.index("--maxmemory") + 1]
    assert command[command.index("--requirepass") + 1] == PASSWORD
    assert "ports" not in redis
    assert any(v.startswith("redis-data:/data") for v in redis["volumes"])
    assert "redis-data" in config["volumes"]


def test_dependants_wait_for_healthy_redis(config):
    for name in ("api", "worker", "worker-cpu"):
        assert config["services"][name]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_api_and_workers_share_redis_url_with_password(config):
    services = config["services"]
    url = f"redis://:{PASSWORD}@redis:6379/0"
    assert services["api"]["environment"]["SRBVAE_API_REDIS_URL"] == url
    for name in ("worker", "worker-cpu"):
        assert services[name]["environment"]["SRBVAE_WORKER_REDIS_URL"] == url


def test_workers_mount_models_read_only(config):
    for name in ("worker", "worker-cpu"):
        volumes = config["services"][name]["volumes"]
        assert f"{REPO_ROOT / 'models'}:/app/models:ro" in volumes, volumes


def test_gpu_worker_reserves_a_gpu(config):
    worker = config["services"]["worker"]
    (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert worker["environment"]["SRBVAE_WORKER_DEVICE"] == "cuda"


def test_cpu_worker_is_a_profile_without_gpu(config):
    worker = config["services"]["worker-cpu"]
    assert worker["profiles"] == ["cpu"]
    assert "deploy" not in worker
    assert worker["environment"]["SRBVAE_WORKER_DEVICE"] == "cpu"


def test_api_port_defaults_to_loopback_8000(config):
    (port,) = config["services"]["api"]["ports"]
    assert port.startswith("127.0.0.1:8000:8000")


def test_settings_come_from_environment():
    result = compose(
        "config", REDIS_PASSWORD=PASSWORD, API_PORT="9000", MODEL_DIR="/srv/models",
        WORKER_CONCURRENCY="8",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert services["api"]["ports"][0].startswith("127.0.0.1:9000:8000")
    assert "/srv/models:/app/models:ro" in services["worker"]["volumes"]
    assert services["worker"]["environment"]["SRBVAE_WORKER_CONCURRENCY"] == "8"


def test_build_contexts_name_existing_dockerfiles(config):
    for service in config["services"].values():
        if "build" in service:
            assert (Path(service["build"]["context"]) / service["build"]["dockerfile"]).is_file()
