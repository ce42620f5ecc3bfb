from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.service.conftest import JSON


def test_sample_answers_one_png_strip_with_its_seed(client, png):
    answer = client.post("/sample", files={"image": ("a.png", png)}, data={"n": "3", "seed": "7"})
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    assert answer.headers["x-seed"] == "7"
    assert Image.open(io.BytesIO(answer.content)).size == (3 * 32, 32)


def test_sample_json_lists_images_and_seed(client, jobs, png):
    data = {"n": "4", "seed": "11", "temperature": "0.5"}
    answer = client.post("/sample", files={"image": ("a.png", png)}, data=data, headers=JSON)
    body = answer.json()
    assert len(body["images"]) == 4 and body["seed"] == 11
    payload = jobs.sent[-1][1]
    assert (payload.n, payload.seed, payload.temperature) == (4, 11, 0.5)


def test_sample_draws_and_reports_a_seed_when_none_is_given(client, jobs, png):
    answer = client.post("/sample", files={"image": ("a.png", png)}, data={"seed": ""})
    assert answer.status_code == 200
    assert int(answer.headers["x-seed"]) == jobs.sent[-1][1].seed


@pytest.mark.parametrize(
    "data",
    [{"n": "0"}, {"n": "65"}, {"n": "two"}, {"temperature": "0"}, {"temperature": "11"},
     {"seed": "-1"}, {"seed": str(2**63)}, {"seed": "1.5"}],
)  # fmt: skip
def test_sample_out_of_range_field_is_422(client, jobs, png, data):
    answer = client.post("/sample", files={"image": ("a.png", png)}, data=data)
    assert answer.status_code == 422 and jobs.sent == []


def test_sample_missing_image_is_422(client):
    answer = client.post("/sample", data={"n": "2"}, files={"other": ("a.png", b"x")})
    assert answer.status_code == 422
