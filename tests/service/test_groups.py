"""Group commit (service/core/groups.py): a lone job goes out at once, the jobs submitted
together, or while a submission is in flight, go out together, a group waits briefly for the
requests on their way, and every job hears how its group went."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import redis
from redis.asyncio import Redis

from contract.tasks import GROUP_JOBS_HEADER, GROUP_TASK, QUEUE, JobGroup, TaskName, TransferRequest
from service.core.connections import make_celery
from service.core.errors import Unavailable
from service.core.groups import GroupCommit
from service.core.jobs import JOB_KEY_PREFIX, JobQueue
from service.core.journal import JOURNAL_KEY, Journal
from service.core.results import ResultListener
from tests.service.conftest import small_settings


class Sender:
    """Records each submission; each one takes `delay_s`, and fails for the items in `refuse`."""

    def __init__(self, delay_s: float = 0.01) -> None:
        self.delay_s = delay_s
        self.sent: list[list[int]] = []
        self.refuse: set[int] = set()

    async def __call__(self, items: list[int]) -> None:
        self.sent.append(items)
        await asyncio.sleep(self.delay_s)
        if self.refuse & set(items):
            raise RuntimeError("refused")


def test_a_lone_item_is_sent_at_once_and_alone():
    async def main() -> None:
        sender = Sender(delay_s=0)
        groups = GroupCommit(sender, max_items=16, gather_s=10)  # nobody coming: no wait
        t0 = time.monotonic()
        await groups.submit(1)
        await groups.submit(2)
        assert time.monotonic() - t0 < 1
        assert sender.sent == [[1], [2]]

    asyncio.run(main())


def test_items_submitted_together_go_out_together():
    async def main() -> None:
        sender = Sender()
        groups = GroupCommit(sender, max_items=16, gather_s=0)
        await asyncio.gather(*(groups.submit(i) for i in range(6)))
        assert sender.sent == [[0, 1, 2, 3, 4, 5]]

    asyncio.run(main())


def test_items_arriving_during_a_submission_go_out_together_next():
    async def main() -> None:
        sender = Sender()
        groups = GroupCommit(sender, max_items=16, gather_s=0)
        first = asyncio.create_task(groups.submit(0))
        await asyncio.sleep(0.002)  # in flight
        await asyncio.gather(first, *(groups.submit(i) for i in range(1, 6)))
        assert sender.sent == [[0], [1, 2, 3, 4, 5]]

    asyncio.run(main())


def test_a_group_waits_for_the_requests_on_their_way():
    async def main() -> None:
        sender = Sender(delay_s=0)
        groups = GroupCommit(sender, max_items=16, gather_s=5)
        arrivals = [groups.arrival() for _ in range(2)]
        first = asyncio.create_task(groups.submit(0))
        await asyncio.sleep(0.01)
        assert sender.sent == []  # two requests are on their way
        second = asyncio.create_task(groups.submit(1, arrivals[0]))
        await asyncio.sleep(0.01)
        assert sender.sent == []
        arrivals[1].close()  # that request ended without a job
        await asyncio.gather(first, second)
        assert sender.sent == [[0, 1]]

    asyncio.run(main())


def test_a_group_waits_for_them_at_most_gather_s():
    async def main() -> None:
        sender = Sender(delay_s=0)
        groups = GroupCommit(sender, max_items=16, gather_s=0.02)
        groups.arrival()  # never submits
        t0 = time.monotonic()
        await groups.submit(0)
        assert 0.015 < time.monotonic() - t0 < 1
        assert sender.sent == [[0]]

    asyncio.run(main())


def test_a_full_group_does_not_wait():
    async def main() -> None:
        sender = Sender(delay_s=0)
        groups = GroupCommit(sender, max_items=2, gather_s=10)
        arrivals = [groups.arrival() for _ in range(3)]
        await asyncio.gather(groups.submit(0, arrivals[0]), groups.submit(1, arrivals[1]))
        assert sender.sent == [[0, 1]]

    asyncio.run(main())


def test_a_group_holds_at_most_max_items():
    async def main() -> None:
        sender = Sender()
        groups = GroupCommit(sender, max_items=2, gather_s=0)
        await asyncio.gather(*(groups.submit(i) for i in range(5)))
        assert sender.sent == [[0, 1], [2, 3], [4]]

    asyncio.run(main())


def test_a_refused_submission_fails_every_item_of_its_group():
    async def main() -> None:
        sender = Sender()
        sender.refuse = {2}
        groups = GroupCommit(sender, max_items=16, gather_s=0)
        first = asyncio.create_task(groups.submit(0))
        await asyncio.sleep(0.002)  # in flight
        outcomes = await asyncio.gather(
            *(groups.submit(i) for i in (1, 2, 3)), return_exceptions=True
        )
        await first
        assert [str(o) for o in outcomes] == ["refused"] * 3
        await groups.submit(4)  # and the next goes out alone again
        assert sender.sent == [[0], [1, 2, 3], [4]]

    asyncio.run(main())


def test_a_cancelled_wait_takes_its_item_out_of_the_next_group():
    async def main() -> None:
        sender = Sender()
        groups = GroupCommit(sender, max_items=16, gather_s=0)
        first = asyncio.create_task(groups.submit(0))
        await asyncio.sleep(0.002)
        waiting = [asyncio.create_task(groups.submit(i)) for i in (1, 2, 3)]
        await asyncio.sleep(0)
        waiting[1].cancel()
        await first
        await asyncio.gather(waiting[0], waiting[2])
        with pytest.raises(asyncio.CancelledError):
            await waiting[1]
        assert sender.sent == [[0], [1, 3]]

    asyncio.run(main())


def test_a_cancelled_request_does_not_cancel_its_group():
    async def main() -> None:
        sender = Sender()
        groups = GroupCommit(sender, max_items=16, gather_s=0)
        tasks = [asyncio.create_task(groups.submit(i)) for i in range(3)]
        await asyncio.sleep(0.002)  # the group is in flight
        tasks[0].cancel()
        await asyncio.gather(tasks[1], tasks[2])
        assert sender.sent == [[0, 1, 2]]

    asyncio.run(main())


# --- the job queue's groups, against a real Redis -----------------------------------------


def test_jobs_submitted_together_share_one_message_each_with_its_record_and_journal_entry(
    redis_server,
):
    settings = small_settings(redis_url=redis_server.url)
    payloads = [TransferRequest(model="digits", image=f"img{i}", attributes="a") for i in range(5)]

    async def main() -> tuple[list[str], set[str]]:
        client = Redis.from_url(redis_server.url)
        celery = make_celery(settings)
        journal = Journal(client, celery, ttl_s=60, resend_after_s=600, confirm_s=10, sweep_s=30)
        listener = ResultListener(client, timeout_s=2, retry_after_s=5)
        queue = JobQueue(client, celery, listener, result_ttl_s=60, max_queue_depth=100,
                         retry_after_s=5, journal=journal, group_max_jobs=16,
                         group_wait_s=0.005)  # fmt: skip
        try:
            lone = await queue.submit(TaskName.TRANSFER, payloads[0], 30, journal=True)
            together = await asyncio.gather(
                *(queue.submit(TaskName.TRANSFER, p, 30, journal=True) for p in payloads[1:])
            )
            submitted = [lone, *together]
            held = await journal._held()
        finally:
            await client.aclose()
            celery.close()
        return [job_id for job_id, _ in submitted], held

    job_ids, held = asyncio.run(main())
    r = redis.Redis.from_url(redis_server.url)
    messages = [json.loads(m) for m in reversed(r.lrange(QUEUE, 0, -1))]  # oldest first
    r.delete(QUEUE)
    lone, group = messages
    assert lone["headers"]["task"] == str(TaskName.TRANSFER)  # alone: a message of its own
    assert lone["headers"]["id"] == job_ids[0]
    assert group["headers"]["task"] == GROUP_TASK
    assert group["headers"][GROUP_JOBS_HEADER] == job_ids[1:]
    assert group["headers"]["expires"] is None  # each job carries its own
    assert group["properties"]["body_encoding"] == "utf-8"
    kwargs = json.loads(group["body"])[1]
    jobs = JobGroup.model_validate(kwargs).jobs
    assert [j.id for j in jobs] == job_ids[1:]
    assert [j.kwargs["image"] for j in jobs] == ["img1", "img2", "img3", "img4"]
    assert all(j.expires_at > time.time() + 20 for j in jobs)
    for job_id in job_ids:
        assert json.loads(r.get(JOB_KEY_PREFIX + job_id))["task"] == str(TaskName.TRANSFER)
        assert r.zscore(JOURNAL_KEY, job_id) is not None
    assert held == set(job_ids)  # the journal sees the jobs inside the group
    r.close()


def test_jobs_grouped_while_redis_is_down_each_answer_503_at_once():
    """The first round trip of each submission (the admission check) fails: the lone first job
    and the group sent after it each hear it as a 503 with Retry-After, within the client's
    timeout; none is left waiting."""
    settings = small_settings()  # redis_url: a port nothing listens on
    payloads = [TransferRequest(model="digits", image=f"img{i}", attributes="a") for i in range(4)]

    async def main() -> list[BaseException | tuple]:
        client = Redis.from_url(settings.redis_url, socket_connect_timeout=0.5)
        celery = make_celery(settings)
        listener = ResultListener(client, timeout_s=0.5, retry_after_s=5)
        queue = JobQueue(client, celery, listener, result_ttl_s=60, max_queue_depth=100,
                         retry_after_s=5, group_max_jobs=16, group_wait_s=0.005)  # fmt: skip
        try:
            return await asyncio.wait_for(
                asyncio.gather(
                    *(queue.submit(TaskName.TRANSFER, p, 30) for p in payloads),
                    return_exceptions=True,
                ),
                timeout=5,
            )
        finally:
            await client.aclose()
            celery.close()

    outcomes = asyncio.run(main())
    assert all(isinstance(o, Unavailable) for o in outcomes), outcomes
    assert {o.status_code for o in outcomes} == {503}  # type: ignore[union-attr]
    assert all(o.headers == {"Retry-After": "5"} for o in outcomes)  # type: ignore[union-attr]
