"""The image memory budget (service.core.budget): reservations wait their turn, give up with
503 and Retry-After, and never leak; and the routes hold and release it."""

from __future__ import annotations

import asyncio

import pytest

from service.core import budget as budget_module
from service.core.budget import MemoryBudget
from service.core.errors import Unavailable
from tests.service.conftest import small_settings
from tests.utils.forms import HEADERS, multipart


def run(coro):
    return asyncio.run(coro)


def test_reservations_within_the_budget_are_taken_at_once():
    async def go():
        budget = MemoryBudget(100, wait_s=0, retry_after_s=5)
        a, b = budget.reservation(), budget.reservation()
        await a.grow_to(60, "a")
        await b.grow_to(40, "b")
        assert budget.used == 100
        a.release()
        a.release()  # again is harmless
        b.release()
        assert budget.used == 0

    run(go())


def test_a_reservation_that_does_not_fit_in_time_is_503_with_retry_after():
    async def go():
        budget = MemoryBudget(100, wait_s=0.05, retry_after_s=7)
        holder = budget.reservation()
        await holder.grow_to(80, "holder")
        late = budget.reservation()
        with pytest.raises(Unavailable) as refused:
            await late.grow_to(30, "late")
        assert refused.value.status_code == 503
        assert refused.value.headers == {"Retry-After": "7"}
        assert budget.used == 80 and late.nbytes == 0
        holder.release()
        assert budget.used == 0

    run(go())


def test_waiters_are_served_in_order_as_memory_is_released():
    async def go():
        budget = MemoryBudget(100, wait_s=5, retry_after_s=5)
        holder = budget.reservation()
        await holder.grow_to(100, "holder")
        order = []

        async def wait(name, nbytes):
            r = budget.reservation()
            await r.grow_to(nbytes, name)
            order.append(name)
            return r

        first = asyncio.create_task(wait("first", 70))
        await asyncio.sleep(0)
        second = asyncio.create_task(wait("second", 20))  # would fit sooner, but waits its turn
        await asyncio.sleep(0.01)
        assert order == []
        holder.release()
        reservations = await asyncio.gather(first, second)
        assert order == ["first", "second"] and budget.used == 90
        for r in reservations:
            r.release()
        assert budget.used == 0

    run(go())


def test_a_holder_growing_goes_ahead_of_new_requests():
    """A request that holds its body and now needs to decode it frees memory sooner than a new
    one would: it is served first."""

    async def go():
        budget = MemoryBudget(100, wait_s=5, retry_after_s=5)
        holder, grower = budget.reservation(), budget.reservation()
        await holder.grow_to(60, "holder")
        await grower.grow_to(30, "grower")
        newcomer = asyncio.create_task(budget.reservation().grow_to(50, "newcomer"))
        await asyncio.sleep(0)
        growing = asyncio.create_task(grower.grow_to(70, "decoding"))
        await asyncio.sleep(0)
        holder.release()
        await growing
        await asyncio.sleep(0.01)
        assert grower.nbytes == 70 and not newcomer.done()
        grower.release()
        await asyncio.wait_for(newcomer, 1)
        assert budget.used == 50

    run(go())


def test_a_holder_growing_within_the_budget_does_not_wait_behind_others():
    async def go():
        budget = MemoryBudget(100, wait_s=0.05, retry_after_s=5)
        holder, grower = budget.reservation(), budget.reservation()
        await holder.grow_to(60, "holder")
        await grower.grow_to(20, "grower")
        newcomer = asyncio.create_task(budget.reservation().grow_to(50, "newcomer"))
        await asyncio.sleep(0)
        await grower.grow_to(40, "decoding")  # 60 + 40 fit: no wait, whoever waits
        assert budget.used == 100
        with pytest.raises(Unavailable):
            await newcomer

    run(go())


def test_one_request_larger_than_the_whole_budget_runs_alone():
    async def go():
        budget = MemoryBudget(100, wait_s=0, retry_after_s=5)
        big = budget.reservation()
        await big.grow_to(500, "big")
        assert budget.used == 100
        big.release()
        assert budget.used == 0

    run(go())


def test_a_cancelled_waiter_takes_nothing():
    async def go():
        budget = MemoryBudget(100, wait_s=5, retry_after_s=5)
        holder = budget.reservation()
        await holder.grow_to(100, "holder")
        waiting = asyncio.create_task(budget.reservation().grow_to(50, "client gone"))
        await asyncio.sleep(0.01)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        holder.release()
        assert budget.used == 0

    run(go())


def test_the_allocator_is_tuned_and_trimmed_on_glibc():
    assert budget_module.tune_allocator()  # the API images and this machine use glibc
    budget_module.trim()


def test_a_full_budget_answers_503_and_the_body_is_not_kept(client, png):
    state = client.app.state
    state.budget.wait_s = 0.05
    blocker = state.budget.reservation()
    asyncio.run(blocker.grow_to(state.budget.capacity, "blocker"))
    body = multipart([("image", "a.png", png), ("attributes", "b.png", png)])
    answer = client.post("/transfer", content=body, headers=HEADERS)
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "5" and "busy" in answer.json()["detail"]
    assert state.budget.used == state.budget.capacity  # the refused request took nothing


@pytest.mark.parametrize("route", ["/transfer", "/encode"])
def test_every_request_gives_its_reservation_back(client, jobs, png, route):
    names = ("image", "attributes") if route == "/transfer" else ("images", "images")
    body = multipart([(n, f"{i}.png", png) for i, n in enumerate(names)])
    assert client.post(route, content=body, headers=HEADERS).status_code == 200
    bad = multipart([(names[0], "a.png", b"not an image"), (names[1], "b.png", png)])
    assert client.post(route, content=bad, headers=HEADERS).status_code == 400
    missing = multipart([("other", "a.png", png)])
    assert client.post(route, content=missing, headers=HEADERS).status_code == 422
    assert client.app.state.budget.used == 0


def test_the_budget_must_hold_the_largest_body():
    with pytest.raises(ValueError, match="image_memory_bytes"):
        small_settings(image_memory_bytes=500 * 1024)  # below 600 KiB body + 256 KiB file
    small_settings(image_memory_bytes=900 * 1024)
