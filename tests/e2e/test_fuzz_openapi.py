"""Schema-driven fuzzing of the live API: schemathesis reads /openapi.json from the real
uvicorn (a worker behind it) and runs its coverage, fuzzing and stateful phases, valid and
invalid requests for every operation (small real images included); no answer may be a server
error. Bounded (examples per operation) and repeatable (deterministic generation).

The CLI rather than the pytest plugin: the plugin's loader for live schemas
(`schemathesis.pytest.from_fixture`) reads a private attribute that pytest 9 no longer has.
"""

from __future__ import annotations

import subprocess
import sys

EXAMPLES = 25  # per operation in the fuzzing phase (about 15 s on a 2-core machine in all)


def test_fuzzer_finds_no_server_error(stack, tmp_path):
    api = stack["api"]
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{api.url}/openapi.json",
        "--checks", "not_a_server_error",
        "--max-examples", str(EXAMPLES),
        "--generation-deterministic",
        "--workers", "1",
        "--request-timeout", "30",
        "--no-color",
    ]  # fmt: skip
    # Its own directory: nothing it writes (reports, example database) lands in the repository.
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    summary = run.stdout[-6000:] + run.stderr[-2000:]
    assert run.returncode == 0, summary
    assert "Server error" not in run.stdout, summary
    assert "API Operations" in run.stdout and "generated" in run.stdout, summary
    print("\n" + "\n".join(run.stdout.splitlines()[-14:]))
