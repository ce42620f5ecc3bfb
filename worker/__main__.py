"""`python -m worker [celery worker options]`: see worker/supervisor.py and docs/worker.md."""

import sys

from worker.supervisor import main

sys.exit(main(sys.argv[1:]))
