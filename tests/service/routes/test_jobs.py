from __future__ import annotations

from service.core.jobs import JobError


def test_async_request_answers_202_with_a_status_url(client, png):
    answer = client.post("/sample?async=true", files={"image": ("a.png", png)}, data={"n": "2"})
    body = answer.json()
    assert answer.status_code == 202
    assert body["status_url"] == f"/jobs/{body['job_id']}" == answer.headers["location"]


def test_job_status_gives_the_result_when_done(client, png):
    job = client.post("/sample?async=true", files={"image": ("a.png", png)}, data={"n": "2"})
    status = client.get(job.json()["status_url"]).json()
    assert status["status"] == "succeeded" and status["kind"] == "sample"
    assert len(status["result"]["images"]) == 2 and status["result"]["seed"] is not None


def test_job_status_is_queued_until_the_worker_answers(client, jobs, png):
    jobs.hold = True
    job = client.post("/encode?async=true", files={"images": ("a.png", png)}).json()
    assert client.get(job["status_url"]).json() == {
        "job_id": job["job_id"], "kind": "encode", "status": "queued", "result": None,
        "error": None,
    }  # fmt: skip


def test_job_status_carries_the_error_of_a_failed_job(client, jobs):
    jobs.fail = JobError(404, "unknown model 'x'")
    job = client.post("/generate?async=true", json={"z": [[0.0] * 8]}).json()
    status = client.get(job["status_url"]).json()
    assert status["status"] == "failed"
    assert status["error"] == {"status": 404, "detail": "unknown model 'x'"}


def test_unknown_job_is_404(client):
    assert client.get("/jobs/not-a-job").status_code == 404
