"""The compose stack for real: images built from docker/, started as docs/deploy.md says, used
through the published port, Redis restarted under queued jobs, two workers, and torn down.

No image registry is reachable here, so the images start from a stand-in base made of Debian
packages (docker/standin-base.sh: debootstrap and `docker import`), and pip installs from a
local index of wheels that `pip download` fetched on this machine, served on loopback to
builds that run with `--network host`. Redis is the stand-in base with Debian's redis-server.
Everything else is what users run: the same Dockerfiles and `docker-compose.yml`, started with
the CPU worker. Layers and the stand-in base stay cached between runs on one machine.

Needs a running Docker engine, Compose, and (for a first build of the stand-in base) root and
debootstrap; skipped with the reason otherwise. `.ci/run` installs and starts all of it. The
tests run in order against one stack.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.utils.face_scenes import astronaut
from tests.utils.images import png
from tests.utils.redis_server import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
STANDIN_BASE = "srbvae-standin/python:3.11-bookworm"
STANDIN_REDIS = "srbvae-standin/redis:bookworm"
IMAGE_PREFIX = "srbvae-test"  # the images the compose file names: srbvae-test/api:latest, ...
QUEUE = "srbvae"  # contract's Celery queue: a Redis list of that name
INDEX_PORT = 38471

# Debian's redis-server on the stand-in base, as the compose file runs it: user redis, /data.
REDIS_DOCKERFILE = f"""FROM {STANDIN_BASE}
RUN apt-get update -qq \\
    && apt-get install -y -qq --no-install-recommends redis-server >/dev/null \\
    && rm -rf /var/lib/apt/lists/* && mkdir -p /data && chown redis:redis /data
WORKDIR /data
"""

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


def run(*args: str, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kwargs)


def engine_problem() -> str | None:
    """Why no Docker engine can be used here, or None."""
    if shutil.which("docker") is None:
        return "no docker client (apt-get install docker.io; .ci/run does)"
    try:
        info = run("docker", "info", "--format", "{{.ServerVersion}}", timeout=30)
    except subprocess.TimeoutExpired:
        return "docker info timed out"
    if info.returncode != 0:
        return f"no Docker engine answers ({info.stderr.strip()[:200]}); start dockerd as root"
    return None


def compose_command() -> list[str] | None:
    """Compose v2 (`docker compose`) where installed, else v1 (`docker-compose`, Debian's)."""
    if run("docker", "compose", "version", timeout=30).returncode == 0:
        return ["docker", "compose"]
    binary = shutil.which("docker-compose")
    return [binary] if binary else None


def image_exists(tag: str) -> bool:
    return run("docker", "image", "inspect", tag, timeout=30).returncode == 0


def torch_version() -> str:
    dockerfile = (REPO_ROOT / "docker" / "worker.Dockerfile").read_text()
    return re.search(r"^ARG TORCH_VERSION=(\S+)", dockerfile, re.M)[1]


def build(label: str, tag: str, args: list[str], timings: dict, **kwargs) -> None:
    """`docker build -t tag`, timed; the image the tag named before goes if nothing uses it."""
    old = run("docker", "image", "inspect", "--format", "{{.Id}}", tag, timeout=30).stdout.strip()
    timed(label, ["nice", "docker", "build", "--quiet", "--network", "host", "-t", tag, *args],
          timings, timeout=900, **kwargs)  # fmt: skip
    new = run("docker", "image", "inspect", "--format", "{{.Id}}", tag, timeout=30).stdout.strip()
    if old and old != new:
        run("docker", "image", "rm", old, timeout=60)  # refused while a container uses it


def timed(label: str, args: list[str], timings: dict, **kwargs) -> None:
    start = time.monotonic()
    result = run(*args, **kwargs)
    timings[label] = round(time.monotonic() - start, 1)
    output = result.stdout[-3000:] + result.stderr[-3000:]
    assert result.returncode == 0, f"{label} failed:\n{output}"


# --- what the build needs ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def docker() -> list[str]:
    problem = engine_problem()
    if problem:
        pytest.skip(problem)
    compose = compose_command()
    if compose is None:
        pytest.skip("no Compose (apt-get install docker-compose; .ci/run does)")
    return compose


@pytest.fixture(scope="module")
def timings() -> Iterator[dict]:
    """Seconds per step, printed at the end (pytest -s shows them; docs/deploy.md quotes them)."""
    measured: dict[str, object] = {}
    yield measured
    print("\ndeploy timings (s):", json.dumps(measured))


@pytest.fixture(scope="module")
def standin_base(docker, timings) -> str:
    if image_exists(STANDIN_BASE):
        return STANDIN_BASE
    if os.geteuid() != 0 or shutil.which("debootstrap") is None:
        pytest.skip(f"no {STANDIN_BASE}: building it needs root and debootstrap")
    timed("standin base", [str(REPO_ROOT / "docker" / "standin-base.sh"), STANDIN_BASE],
          timings, timeout=900)  # fmt: skip
    return STANDIN_BASE


@pytest.fixture(scope="module")
def wheel_index(request, tmp_path_factory, timings) -> Iterator[str]:
    """A PEP 503-shaped index (one directory per project) of the wheels the images install,
    downloaded here by pip and served on 127.0.0.1 to builds on the host's network."""
    cache = getattr(request.config, "cache", None)  # kept between runs, in .pytest_cache/
    wheels = Path(cache.mkdir("deploy-wheels") if cache else tmp_path_factory.mktemp("wheels"))
    timed("pip download", [
        sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(wheels),
        "--only-binary", ":all:",
        "-r", str(REPO_ROOT / "docker" / "requirements-api.txt"),
        "-r", str(REPO_ROOT / "docker" / "requirements-worker.txt"),
        # The CPU build (this machine keeps one beside pip's configured find-links).
        f"torch=={torch_version()}+cpu",
        # Debian 12's Python is 3.11.2: redis wants async-timeout below 3.11.3, a marker that
        # this interpreter, a newer 3.11, does not select.
        "async-timeout",
    ], timings, timeout=900)  # fmt: skip
    index = tmp_path_factory.mktemp("index")  # this run's own: another may run beside it
    for wheel in wheels.glob("*.whl"):
        project = re.sub(r"[-_.]+", "-", wheel.name.split("-")[0]).lower()
        (index / project).mkdir(parents=True, exist_ok=True)
        (index / project / wheel.name).symlink_to(wheel)

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    # The URL is a build argument, and build arguments are part of the layer cache's key: the
    # same port every run, unless it is taken (then nothing is cached, and all still works).
    handler = functools.partial(Quiet, directory=index)
    try:
        server = ThreadingHTTPServer(("127.0.0.1", INDEX_PORT), handler)
    except OSError:
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def images(standin_base, wheel_index, timings) -> dict[str, str]:
    build("redis image", STANDIN_REDIS, ["-"], timings, input=REDIS_DOCKERFILE)
    args = ["--build-arg", f"BASE_IMAGE={standin_base}",
            "--build-arg", f"PIP_INDEX_URL={wheel_index}", str(REPO_ROOT)]  # fmt: skip
    tags = {"api": f"{IMAGE_PREFIX}/api:latest", "worker-cpu": f"{IMAGE_PREFIX}/worker-cpu:latest"}
    build("api image", tags["api"], ["-f", "docker/api.Dockerfile", *args], timings, cwd=REPO_ROOT)
    build("worker-cpu image", tags["worker-cpu"], ["-f", "docker/worker.Dockerfile", *args],
          timings, cwd=REPO_ROOT)  # fmt: skip
    for tag in tags.values():
        size = run("docker", "image", "inspect", "--format", "{{.Size}}", tag).stdout.strip()
        timings[f"{tag} MB"] = round(int(size) / 1e6)
    return tags


# --- the stack ---------------------------------------------------------------------------------


@dataclass
class Stack:
    compose: list[str]
    project: str
    port: int
    env_file: Path  # empty: not a developer's .env beside the compose file

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        # Nothing of the caller's Compose or stack settings: the file's defaults, except where
        # the images are and which port this test may use.
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "REDIS_",
                "API_", "WORKER_", "IMAGE_", "MODEL_DIR", "DEFAULT_MODEL", "RESULT_TTL"))}  # fmt: skip
        return {**keep, "IMAGE_PREFIX": IMAGE_PREFIX, "REDIS_IMAGE": STANDIN_REDIS,
                "API_PORT": str(self.port)}  # fmt: skip

    def base(self) -> list[str]:
        return [*self.compose, "--project-name", self.project, "--env-file", str(self.env_file)]

    def __call__(self, *args: str, timeout: float = 300) -> str:
        result = run(*self.base(), *args, cwd=REPO_ROOT, env=self.env(), timeout=timeout)
        assert result.returncode == 0, f"compose {' '.join(args)}:\n{result.stderr[-3000:]}"
        return result.stdout

    def containers(self, service: str | None = None, *, all: bool = False) -> list[str]:
        labels = ["--filter", f"label=com.docker.compose.project={self.project}"]
        if service:
            labels += ["--filter", f"label=com.docker.compose.service={service}"]
        return run("docker", "ps", "-q", *(["-a"] if all else []), *labels).stdout.split()

    def leftovers(self) -> dict[str, list[str]]:
        label = f"label=com.docker.compose.project={self.project}"
        return {
            "containers": self.containers(all=True),
            "volumes": run("docker", "volume", "ls", "-q", "--filter", label).stdout.split(),
            "networks": run("docker", "network", "ls", "-q", "--filter", label).stdout.split(),
        }

    def health(self) -> dict[str, str]:
        ids = self.containers()
        if not ids:
            return {}
        fmt = "{{.Name}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}"
        out = run("docker", "inspect", "--format", fmt, *ids).stdout
        return dict(line.lstrip("/").split() for line in out.splitlines())

    def wait_healthy(self, count: int, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = self.health()
            if len(states) == count and set(states.values()) == {"healthy"}:
                return
            time.sleep(2)
        logs = run(*self.base(), "logs", "--tail", "40", cwd=REPO_ROOT, env=self.env()).stdout
        raise TimeoutError(f"not all {count} healthy within {timeout} s: {states}\n{logs[-6000:]}")

    def redis_cli(self, *args: str) -> str:
        (redis,) = self.containers("redis")
        result = run("docker", "exec", redis, "redis-cli", *args)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def down(self) -> None:
        for container in self.containers(all=True):  # a paused container cannot be stopped
            run("docker", "unpause", container)
        # Compose's down, then by label whatever that could not remove.
        run(*self.base(), "down", "--volumes", cwd=REPO_ROOT, env=self.env(), timeout=300)
        left = self.leftovers()
        if left["containers"]:
            run("docker", "rm", "--force", "--volumes", *left["containers"])
        for kind in ("volume", "network"):
            if left[f"{kind}s"]:
                run("docker", kind, "rm", *left[f"{kind}s"])


@pytest.fixture(scope="module")
def stack(docker, images, timings, tmp_path_factory) -> Iterator[Stack]:
    env_file = tmp_path_factory.mktemp("compose") / "empty.env"
    env_file.write_text("")
    stack = Stack(docker, f"srbvae-test-{os.getpid()}", free_port(), env_file)
    try:
        start = time.monotonic()
        # docs/deploy.md's line for a machine without a GPU: the API and the CPU worker (and,
        # as their dependency, Redis); the images exist, so nothing is built or pulled.
        stack("up", "-d", "api", "worker-cpu")
        stack.wait_healthy(3)
        timings["up to healthy"] = round(time.monotonic() - start, 1)
        yield stack
    finally:
        stack.down()


def transfer(url: str, **params) -> httpx.Response:
    # At the faces model's 32x32: taken as aligned faces (a photo would be searched for one).
    files = {"image": ("a.png", png((32, 32), (200, 30, 30))),
             "attributes": ("b.png", png((32, 32), (30, 30, 200)))}  # fmt: skip
    return httpx.post(f"{url}/transfer", files=files, params=params, timeout=60)


def submit_async(stack: Stack, n: int) -> list[str]:
    ids = []
    for _ in range(n):
        answer = transfer(stack.url, **{"async": "true"})
        assert answer.status_code == 202, answer.text
        ids.append(answer.json()["job_id"])
    return ids


def wait_succeeded(stack: Stack, job_ids: list[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    pending = set(job_ids)
    while pending and time.monotonic() < deadline:
        for job_id in list(pending):
            state = httpx.get(f"{stack.url}/jobs/{job_id}", timeout=10)
            if state.status_code == 200 and state.json()["status"] == "succeeded":
                pending.discard(job_id)
            elif state.status_code == 200 and state.json()["status"] == "failed":
                raise AssertionError(f"job {job_id} failed: {state.json()['error']}")
        time.sleep(0.5)
    assert not pending, f"{len(pending)} of {len(job_ids)} jobs not answered within {timeout} s"


def jobs_taken_by(container: str) -> set[str]:
    """The task ids a worker container ran: Celery's INFO line of each job's end (the
    'received' line is logged at DEBUG only)."""
    logs = subprocess.run(["docker", "logs", container], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=60).stdout  # fmt: skip
    return set(re.findall(r"Task srbvae\.\w+\[([0-9a-f-]{36})\] (?:succeeded|failed)", logs))


# --- the tests, in order -----------------------------------------------------------------------


def test_stack_is_healthy_and_ready(stack):
    assert httpx.get(f"{stack.url}/readyz", timeout=10).status_code == 200
    assert httpx.get(f"{stack.url}/models", timeout=10).json()


def test_transfer_and_sample_through_the_published_port(stack):
    answer = transfer(stack.url)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/png"
    assert answer.content.startswith(b"\x89PNG")
    assert answer.headers["x-model"] == "faces"

    sample = httpx.post(f"{stack.url}/sample", files={"image": ("a.png", png((32, 32)))},
                        data={"n": "4", "seed": "1"}, timeout=60)  # fmt: skip
    assert sample.status_code == 200, sample.text
    assert sample.content.startswith(b"\x89PNG")
    assert sample.headers["x-seed"] == "1"


def test_a_photo_is_answered_with_its_face_edited(stack):
    # The worker image's OpenCV and its cascades at work: the astronaut's face found and pasted.
    photo = io.BytesIO()
    Image.fromarray(astronaut()).save(photo, "JPEG", quality=95)
    answer = httpx.post(f"{stack.url}/neutralize", files={"image": ("a.jpg", photo.getvalue())},
                        timeout=60)  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(answer.content)).size == (512, 512)


def test_jobs_queued_across_a_redis_restart_are_answered(stack, timings):
    (worker,) = stack.containers("worker-cpu")
    run("docker", "pause", worker)
    try:
        # Its blocking pop times out within a second; after that nothing takes from the queue.
        # The API still sees the worker's registry entry (15 s TTL), so it accepts the jobs.
        time.sleep(2)
        job_ids = submit_async(stack, 5)
        assert int(stack.redis_cli("llen", QUEUE)) == 5
        start = time.monotonic()
        stack("restart", "redis")
        assert int(stack.redis_cli("llen", QUEUE)) == 5  # read back from the append-only file
        timings["redis restart"] = round(time.monotonic() - start, 1)
    finally:
        run("docker", "unpause", worker)
    wait_succeeded(stack, job_ids)
    assert set(job_ids) <= jobs_taken_by(worker)


def test_two_workers_both_take_jobs(stack, timings):
    start = time.monotonic()
    stack("up", "-d", "--scale", "worker-cpu=2", "api", "worker-cpu")
    stack.wait_healthy(4)
    timings["second worker healthy"] = round(time.monotonic() - start, 1)
    workers = stack.containers("worker-cpu")
    assert len(workers) == 2
    before = {w: jobs_taken_by(w) for w in workers}

    job_ids = submit_async(stack, 40)
    wait_succeeded(stack, job_ids)
    taken = {w: (jobs_taken_by(w) - before[w]) & set(job_ids) for w in workers}
    timings["jobs per worker"] = sorted(len(t) for t in taken.values())
    assert all(taken.values()), {w: len(t) for w, t in taken.items()}
    assert set().union(*taken.values()) == set(job_ids)


def test_down_removes_containers_volumes_and_networks(stack):
    assert any(stack.leftovers().values())
    stack("down", "--volumes")  # as docs/deploy.md says it; the fixture's down() is a fallback
    assert stack.leftovers() == {"containers": [], "volumes": [], "networks": []}
    with contextlib.suppress(httpx.TransportError):
        httpx.get(f"{stack.url}/healthz", timeout=2)
        pytest.fail("the API still answers after down")
