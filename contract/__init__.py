"""What the API service and the worker agree on: task names, queue, payloads, errors.

Both sides import this package; neither imports the other. It must never import torch or
`model/`, so the web process stays small.
"""
