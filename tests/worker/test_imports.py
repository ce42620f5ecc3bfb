"""What importing the worker's modules costs: no cycle among them, and no torch in the
supervisor, which must never touch CUDA before it starts a worker process."""

from __future__ import annotations

import subprocess
import sys

from scripts.processes import REPO_ROOT
from tests.utils.imports import cycles, import_graph


def test_worker_modules_import_no_cycle():
    assert cycles(import_graph("worker", "contract")) == []


def test_the_supervisor_and_settings_import_no_torch():
    code = "import sys, worker.__main__, worker.settings; assert 'torch' not in sys.modules"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
