"""The Celery worker: holds the models and runs the tasks named in contract/.

Run it with `python -m worker` (docs/worker.md). Importing this package, `worker.settings` or
the supervisor (`worker.__main__`) imports nothing heavy; `worker.app` and the modules it
loads (`worker.runtime`, `worker.tasks`) import torch and `model/`.
"""
