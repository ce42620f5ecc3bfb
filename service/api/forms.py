"""Multipart forms -> validated fields and files, with FastAPI's 422 shape for bad fields."""

from __future__ import annotations

from typing import TypeVar

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from service.core.uploads import Form, Upload
from service.schemas.requests import FileSpec

F = TypeVar("F", bound=BaseModel)


def fields(model: type[F], form: Form) -> F:
    # An empty field is what a browser sends for a blank input: treat it as omitted.
    given = {k: v for k, v in form.fields.items() if v.strip() != ""}
    try:
        return model.model_validate(given)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from exc


def files(form: Form, spec: FileSpec, max_many: int) -> dict[str, list[Upload]]:
    """The files each name of `spec` must have: exactly one, or 1..max_many for a `many` name."""
    known = {name for name, _, _ in spec}
    errors = []
    found: dict[str, list[Upload]] = {}
    for upload in form.files:
        if upload.field not in known:
            errors.append(_error(upload.field, "extra_forbidden", "unexpected file"))
    for name, _, many in spec:
        found[name] = form.files_named(name)
        count = len(found[name])
        if count == 0:
            errors.append(_error(name, "missing", "Field required"))
        elif not many and count > 1:
            errors.append(_error(name, "too_long", "send exactly one file"))
        elif count > max_many:
            errors.append(_error(name, "too_long", f"send at most {max_many} files"))
    if errors:
        raise RequestValidationError(errors)
    return found


def _error(name: str, kind: str, msg: str) -> dict:
    return {"type": kind, "loc": ("body", name), "msg": msg, "input": None}


def multipart_body(model: type[BaseModel], spec: FileSpec) -> dict:
    """The OpenAPI request body of an upload route (the form is parsed by hand, so FastAPI
    cannot derive it from the signature)."""
    schema = model.model_json_schema()
    properties: dict = {}
    for name, description, many in spec:
        one = {"type": "string", "format": "binary"}
        properties[name] = (
            {"type": "array", "items": one, "description": description}
            if many
            else {**one, "description": description}
        )
    properties.update(schema.get("properties", {}))
    body_schema = {
        "type": "object",
        "properties": properties,
        "required": [name for name, _, _ in spec],
    }
    if "$defs" in schema:
        body_schema["$defs"] = schema["$defs"]
    return {
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {"schema": body_schema}},
        }
    }
