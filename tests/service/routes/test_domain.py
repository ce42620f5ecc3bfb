"""The domain check in every answer: the worker's scores as headers and as a JSON field."""

from __future__ import annotations

from contract.tasks import DomainCheck
from tests.service.conftest import JSON

CHECK = DomainCheck(
    inputs=["image", "attributes"],
    percentiles=[42.5, 100.0],
    out_of_domain=[False, True],
    threshold=99.0,
    trained_on="synthetic faces",
)


def transfer(client, png, headers=None):
    files = {"image": ("a.png", png), "attributes": ("b.png", png)}
    return client.post("/transfer", files=files, headers=headers)


def test_a_png_answer_carries_the_scores_in_headers(client, jobs, png):
    jobs.domain = CHECK
    answer = transfer(client, png)
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    assert answer.headers["x-domain-percentile"] == "42.5, 100"
    assert answer.headers["x-out-of-domain"] == "false, true"


def test_a_json_answer_carries_them_as_a_field(client, jobs, png):
    jobs.domain = CHECK
    body = transfer(client, png, JSON).json()
    assert body["domain"] == CHECK.model_dump()


def test_an_answer_without_a_check_has_neither(client, png):
    answer = transfer(client, png, JSON)
    assert answer.json()["domain"] is None
    assert "x-domain-percentile" not in answer.headers


def test_the_async_answer_has_the_field_too(client, jobs, png):
    jobs.domain = CHECK
    files = {"image": ("a.png", png)}
    accepted = client.post("/neutralize?async=true", files=files).json()
    job = client.get(accepted["status_url"]).json()
    assert job["result"]["domain"]["out_of_domain"] == [False, True]


def test_openapi_documents_the_field_and_headers(client):
    spec = client.get("/openapi.json").json()
    assert "domain" in spec["components"]["schemas"]["ImagePublic"]["properties"]
    ok = spec["paths"]["/transfer"]["post"]["responses"]["200"]["description"]
    assert "X-Domain-Percentile" in ok and "X-Out-Of-Domain" in ok
