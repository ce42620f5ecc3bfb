"""docker-compose.yml as Compose resolves it. Debian's docker-compose (v1.29, which knows
profiles and GPU reservations) validates and interpolates the file with no Docker engine; the
assertions read its resolved output. tests/deploy/test_stack.py runs the stack for real."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import redis
import yaml

from contract.redis_url import parse_sentinel_url
from service.core.config import Settings
from tests.utils.redis_server import free_port
from worker.settings import WorkerSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "0123456789abcdef0123456789abcdef"
EXPOSED = "docker/compose.redis-exposed.yml"
# The settings a user may set, all commented out: as an env file it sets nothing.
ENV_EXAMPLE = REPO_ROOT / ".env.example"


def compose(*args: str, files: tuple[str, ...] = ("docker-compose.yml",), **env: str):
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("docker-compose not found: apt-get install docker-compose (.ci/run does)")
    settings = set(re.findall(r"^# ?([A-Z][A-Z0-9_]+)=", ENV_EXAMPLE.read_text(), re.M))
    clean = {k: v for k, v in os.environ.items() if k not in settings and "COMPOSE" not in k}
    return subprocess.run(
        [binary, "--project-directory", str(REPO_ROOT), "--env-file", str(ENV_EXAMPLE),
         *(a for f in files for a in ("-f", f)), *args],
        cwd=REPO_ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def resolve(*args: str, **kwargs) -> dict:
    result = compose(*args, "config", **kwargs)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


@pytest.fixture(scope="module")
def config() -> dict:
    """The CPU profile with nothing set, as a fresh clone has it."""
    return resolve("--profile", "cpu")


def redis_script(config: dict) -> str:
    """The shell script the redis service runs, as the container's shell receives it."""
    sh, flag, script = config["services"]["redis"]["command"]
    assert (sh, flag) == ("sh", "-c")
    return script.replace("$$", "$")  # Compose prints its escape back


def test_config_resolves_with_nothing_set():
    services = resolve()["services"]
    assert {name for name, s in services.items() if "profiles" not in s} == {
        "redis", "api", "worker"
    }  # fmt: skip


def test_services(config):
    assert set(config["services"]) == {
        "redis", "api", "worker", "worker-cpu", "redis-replica", "sentinel-1", "sentinel-2",
        "sentinel-3",
    }  # fmt: skip


def test_every_service_has_healthcheck_and_restart_policy(config):
    for name, service in config["services"].items():
        assert service["healthcheck"]["test"], name
        assert service["restart"] == "unless-stopped", name


def test_redis_persists_refuses_eviction_and_is_not_published(config):
    redis_service = config["services"]["redis"]
    script = redis_script(config)
    for option in ("--dir /data", "--appendonly yes", "--maxmemory-policy noeviction"):
        assert option in script
    assert redis_service["environment"]["REDIS_MAXMEMORY"] == "1gb"
    assert "ports" not in redis_service
    assert any(v.startswith("redis-data:/data") for v in redis_service["volumes"])
    assert "redis-data" in config["volumes"]


def test_redis_is_only_on_the_internal_network(config):
    assert set(config["services"]["redis"]["networks"]) == {"backend"}
    assert config["networks"]["backend"]["internal"] is True
    for name in ("worker", "worker-cpu"):
        assert set(config["services"][name]["networks"]) == {"backend"}
    assert set(config["services"]["api"]["networks"]) == {"default", "backend"}


def test_redis_password_is_optional_and_kept_off_the_command_line():
    with_password = resolve("--profile", "cpu", REDIS_PASSWORD=PASSWORD)["services"]
    assert with_password["redis"]["environment"]["REDIS_PASSWORD"] == PASSWORD
    assert PASSWORD not in str(with_password["redis"]["command"])
    assert PASSWORD not in str(with_password["redis"]["healthcheck"])


@pytest.mark.parametrize("password", ["", PASSWORD])
def test_redis_script_requires_the_password_only_when_one_is_set(config, password, tmp_path):
    """The service's own shell script, run with this machine's redis-server."""
    port = free_port()
    script = redis_script(config).replace("--dir /data", f"--dir {tmp_path} --port {port}")
    env = {**os.environ, "REDIS_PASSWORD": password, "REDIS_MAXMEMORY": "64mb"}
    server = subprocess.Popen(["sh", "-c", script], env=env, stdout=subprocess.DEVNULL)
    try:
        client = redis.Redis(port=port, password=password or None, socket_timeout=2)
        deadline = time.monotonic() + 10
        while True:
            try:
                assert client.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.1)
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        if password:
            with pytest.raises(redis.AuthenticationError):
                redis.Redis(port=port, socket_timeout=2).ping()
    finally:
        server.terminate()
        server.wait(10)


def test_exposing_redis_requires_a_password_and_a_private_address():
    result = compose("config", files=("docker-compose.yml", EXPOSED), REDIS_BIND="10.0.0.5")
    assert result.returncode != 0
    assert "REDIS_PASSWORD" in result.stderr
    result = compose("config", files=("docker-compose.yml", EXPOSED), REDIS_PASSWORD=PASSWORD)
    assert result.returncode != 0
    assert "REDIS_BIND" in result.stderr


def test_exposed_redis_publishes_on_the_private_address_with_the_password():
    services = resolve(files=("docker-compose.yml", EXPOSED), REDIS_PASSWORD=PASSWORD,
                       REDIS_BIND="10.0.0.5")["services"]  # fmt: skip
    assert services["redis"]["ports"] == ["10.0.0.5:6379:6379/tcp"]
    assert services["redis"]["environment"]["REDIS_PASSWORD"] == PASSWORD
    assert set(services["redis"]["networks"]) == {"backend", "default"}
    url = f"redis://:{PASSWORD}@redis:6379/0"
    assert services["api"]["environment"]["SRBVAE_API_REDIS_URL"] == url
    assert services["worker"]["environment"]["SRBVAE_WORKER_REDIS_URL"] == url


def test_env_example_names_every_setting():
    used = set()
    for path in ("docker-compose.yml", EXPOSED):
        # ${NAME}: a setting; $${NAME}: the container shell's own variable
        used |= set(re.findall(r"(?<!\$)\$\{([A-Z][A-Z0-9_]+)", (REPO_ROOT / path).read_text()))
    documented = set(re.findall(r"^# ?([A-Z][A-Z0-9_]+)=", ENV_EXAMPLE.read_text(), re.M))
    assert used - {"REDIS_PASSWORD", "REDIS_MAXMEMORY"} <= documented, used - documented
    assert {"REDIS_PASSWORD", "REDIS_MAXMEMORY"} <= documented


def test_dependants_wait_for_healthy_redis(config):
    for name in ("api", "worker", "worker-cpu"):
        assert config["services"][name]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_api_and_workers_share_redis_url(config):
    services = config["services"]
    url = "redis://:@redis:6379/0"  # no password: the internal network keeps others out
    assert services["api"]["environment"]["SRBVAE_API_REDIS_URL"] == url
    for name in ("worker", "worker-cpu"):
        assert services[name]["environment"]["SRBVAE_WORKER_REDIS_URL"] == url


def test_api_mounts_models_read_only_for_their_examples(config):
    assert f"{REPO_ROOT / 'models'}:/app/models:ro" in config["services"]["api"]["volumes"]


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
    services = resolve(API_PORT="9000", MODEL_DIR="/srv/models", WORKER_CONCURRENCY="8")["services"]
    assert services["api"]["ports"][0].startswith("127.0.0.1:9000:8000")
    assert "/srv/models:/app/models:ro" in services["worker"]["volumes"]
    assert services["worker"]["environment"]["SRBVAE_WORKER_CONCURRENCY"] == "8"


def test_build_contexts_name_existing_dockerfiles(config):
    for service in config["services"].values():
        if "build" in service:
            assert (Path(service["build"]["context"]) / service["build"]["dockerfile"]).is_file()


# --- profile ha: a replica and three Sentinels --------------------------------------------------

HA = dict(REDIS_SCHEME="sentinel", REDIS_ADDRESS="sentinel:26379", REDIS_MIN_REPLICAS="1")


@pytest.fixture(scope="module")
def ha_config() -> dict:
    return resolve("--profile", "ha", **HA)


def test_ha_profile_adds_a_persisted_replica_and_three_sentinels(ha_config):
    services = ha_config["services"]
    for name in ("redis-replica", "sentinel-1", "sentinel-2", "sentinel-3"):
        assert services[name]["profiles"] == ["ha"], name
        assert services[name]["healthcheck"]["test"] and services[name]["restart"], name
        assert "ports" not in services[name], name
    replica = services["redis-replica"]
    assert replica["environment"]["REPLICAOF"] == "redis 6379"
    assert replica["command"] == services["redis"]["command"]  # persisted and capped alike
    assert any(v.startswith("redis-replica-data:/data") for v in replica["volumes"])
    for name in ("sentinel-1", "sentinel-2", "sentinel-3"):
        assert services[name]["networks"]["backend"]["aliases"] == ["sentinel"]
        assert "sentinel monitor srbvae redis 6379 2" in services[name]["command"][2]


def test_ha_api_and_workers_find_the_primary_through_the_sentinels(ha_config):
    services = ha_config["services"]
    url = services["api"]["environment"]["SRBVAE_API_REDIS_URL"]
    assert url == "sentinel://:@sentinel:26379/0"
    assert parse_sentinel_url(url).sentinels == [("sentinel", 26379)]
    for name in ("worker", "worker-cpu"):
        assert services[name]["environment"]["SRBVAE_WORKER_REDIS_URL"] == url
    settings = Settings(redis_url=url, redis_min_replicas=int(
        services["api"]["environment"]["SRBVAE_API_REDIS_MIN_REPLICAS"]))  # fmt: skip
    assert settings.redis_min_replicas == 1 and settings.redis_master_name == "srbvae"
    assert WorkerSettings(redis_url=url).redis_master_name == "srbvae"


def test_without_profile_ha_api_takes_jobs_without_waiting_for_a_replica(config):
    assert config["services"]["api"]["environment"]["SRBVAE_API_REDIS_MIN_REPLICAS"] == "0"


def wait_until(check, what: str, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except redis.RedisError:
            pass
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


@pytest.mark.parametrize("password", ["", PASSWORD])
def test_ha_scripts_run_a_replica_and_a_sentinel_that_sees_it(ha_config, password, tmp_path):
    """The primary's, the replica's and a Sentinel's own shell scripts, run with this machine's
    redis-server; the compose host names become loopback ports."""
    services = ha_config["services"]
    primary, replica, sentinel = free_port(), free_port(), free_port()
    env = {**os.environ, "REDIS_PASSWORD": password, "REDIS_MAXMEMORY": "64mb",
           "SENTINEL_DOWN_AFTER_MS": "1000"}  # fmt: skip
    scripts = []
    for name, port, extra in [("redis", primary, {}),
                              ("redis-replica", replica, {"REPLICAOF": f"127.0.0.1 {primary}"})]:  # fmt: skip
        (tmp_path / name).mkdir()
        script = services[name]["command"][2].replace("$$", "$")
        scripts.append((script.replace("--dir /data", f"--dir {tmp_path / name} --port {port}"),
                        {**env, **extra}))  # fmt: skip
    (tmp_path / "sentinel").mkdir()
    script = services["sentinel-1"]["command"][2].replace("$$", "$")
    script = script.replace("/data", str(tmp_path / "sentinel")).replace(
        "port 26379", f"port {sentinel}"
    )
    scripts.append((script.replace("redis 6379", f"127.0.0.1 {primary}"), env))
    servers = [
        subprocess.Popen(["sh", "-c", s], env=e, stdout=subprocess.DEVNULL) for s, e in scripts
    ]
    try:
        auth = {"password": password or None, "socket_timeout": 2}
        wait_until(lambda: redis.Redis(port=replica, **auth).info("replication")[
            "master_link_status"] == "up", "the replica did not sync with the primary")  # fmt: skip
        asking = redis.Redis(port=sentinel, socket_timeout=2, decode_responses=True)
        wait_until(lambda: asking.sentinel_get_master_addr_by_name("srbvae") == (
            "127.0.0.1", primary), "the Sentinel does not name the primary")  # fmt: skip
        wait_until(lambda: [r["port"] for r in asking.sentinel_slaves("srbvae")] == [replica],
                   "the Sentinel did not find the replica")  # fmt: skip
        config = (tmp_path / "sentinel" / "sentinel.conf").read_text()
        assert ("auth-pass" in config) == bool(password)
    finally:
        for server in servers:
            server.terminate()
            server.wait(10)
