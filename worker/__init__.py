"""The Celery worker: holds the models and runs the tasks named in contract/.

Run it with `python -m worker` (docs/worker.md). Importing this package imports nothing
heavy; `worker.app` pulls in Celery, `worker.tasks` pulls in torch.
"""
