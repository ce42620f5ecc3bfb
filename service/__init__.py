"""The public HTTP API: validates uploads, hands the work to the worker by task name, answers.

Never imports torch, `model/` or `worker/`: it talks to workers only through `contract/`.
"""
