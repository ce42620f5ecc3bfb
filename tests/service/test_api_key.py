from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from service.api.deps import get_jobs, get_workers
from service.main import create_app
from tests.service.conftest import small_settings

KEY = "k" * 32


@pytest.fixture
def keyed(jobs, workers):
    app = create_app(small_settings(api_key=KEY))
    app.dependency_overrides[get_jobs] = lambda: jobs
    app.dependency_overrides[get_workers] = lambda: workers
    with TestClient(app) as c:
        yield c


def test_job_routes_need_the_key(keyed, png):
    answer = keyed.post("/sample", files={"image": ("a.png", png)})
    assert answer.status_code == 401
    answer = keyed.post("/sample", files={"image": ("a.png", png)}, headers={"X-API-Key": KEY})
    assert answer.status_code == 200


def test_health_and_page_stay_open(keyed):
    assert keyed.get("/healthz").status_code == 200 and keyed.get("/").status_code == 200


def test_placeholder_keys_are_refused():
    with pytest.raises(ValidationError):
        small_settings(api_key="changeme")
