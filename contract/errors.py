"""Errors a task can end with. Both sides import this module, so Celery's JSON result backend
rebuilds them as these classes and the API maps each to its HTTP status."""

from __future__ import annotations


class JobError(Exception):
    """Base of every error a worker reports on purpose; anything else is an internal fault."""

    http_status = 500


class UnknownModel(JobError):
    http_status = 404


class InvalidPayload(JobError):
    http_status = 422


class NoFaceFound(InvalidPayload):
    """No face was found in a photo sent to a faces model."""


class UnreadableImage(JobError):
    """A photo the API forwarded undecoded (a faces model's upload) is truncated or corrupt."""

    http_status = 400


class JobTimeout(JobError):
    http_status = 504


class TooManyDeliveries(JobError):
    """The job was handed out repeatedly and its worker died each time (a poison job)."""

    http_status = 500
