"""The capacity model's arithmetic (bench/capacity.py), from a fixed set of figures: no stack,
no measuring."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from bench.capacity import (
    MAX_UTILISATION,
    Figures,
    costs_at,
    latency,
    main,
    plan,
    saturating_load,
    stack_cores,
    utilisation_for,
)

FIGURES = Figures(
    machine="test", cores=2, model="digits",
    idle_cores={"api": 0.01, "worker": 0.01, "redis": 0.0},
    cpu_ms={"api": 5.0, "worker_outside": 7.0, "redis": 1.0, "client": 4.0, "relay": 1.0},
    cpu_ms_c1={"api": 6.0, "worker_outside": 9.0, "redis": 1.5, "client": 5.0, "relay": 1.0},
    rates=(30.0, 60.0),
    redis_ops=25.0, forward_ms={1: 9.0, 8: 4.0}, bare_best_rate=400.0, bare_best_batch=32,
    unloaded_ms=36.0,
)  # fmt: skip


def test_saturation_is_where_the_stack_and_client_use_every_free_core():
    load = saturating_load(FIGURES, free=1.5)
    assert sum(stack_cores(FIGURES, load, client=True).values()) == pytest.approx(1.5, rel=1e-6)
    assert latency(FIGURES, load * 1.01, free=1.5) == float("inf")


def test_latency_is_the_unloaded_latency_stretched_by_the_machines_busy_fraction():
    load = saturating_load(FIGURES, free=1.5) / 2
    u = (sum(stack_cores(FIGURES, load, client=True).values()) + 0.5) / 2  # others use 0.5
    assert latency(FIGURES, load, free=1.5) == pytest.approx(36.0 / (1 - u))
    assert latency(FIGURES, 0.0, free=2.0) == pytest.approx(36.0 / (1 - 0.02 / 2))


def test_costs_move_from_concurrency_1s_to_16s_between_their_rates():
    assert costs_at(FIGURES, 10.0)["api"] == 6.0
    assert costs_at(FIGURES, 45.0)["worker_outside"] == pytest.approx(8.0)
    assert costs_at(FIGURES, 1000.0)["redis"] == 1.0


def test_forward_cost_falls_as_load_forms_larger_batches():
    assert FIGURES.forward_at(0.0) == pytest.approx(9.0)
    assert FIGURES.forward_at(50.0) < FIGURES.forward_at(10.0) < 9.0


def test_latency_target_sets_the_utilisation():
    assert utilisation_for(FIGURES, 100.0) == pytest.approx(0.64)
    assert utilisation_for(FIGURES, 1000.0) == MAX_UTILISATION
    assert utilisation_for(FIGURES, 30.0) == 0.0  # below the unloaded latency: unreachable
    assert utilisation_for(FIGURES, None) == MAX_UTILISATION


def test_plan_scales_with_load_and_counts_gpu_nodes():
    small, large = (plan(FIGURES, load, 0.5, 16, None) for load in (100.0, 1000.0))
    assert large["worker_cores"] == pytest.approx(10 * small["worker_cores"])
    assert large["redis_ops"] == 25_000 and large["api_processes"] == 10
    gpu = plan(FIGURES, 1000.0, 0.5, 16, gpu_rate=400.0)
    assert gpu["gpus"] == 5  # 1000 / (400 * 0.5), rounded up
    assert gpu["nodes"] == 5  # the host side fits: (10 + 14) cores over 5 nodes of 16


def test_table_from_saved_figures_flags_a_load_beyond_one_redis(tmp_path, capsys):
    path = tmp_path / "figures.json"
    path.write_text(json.dumps(asdict(FIGURES)))
    main(["--figures", str(path), "--loads", "100,1000", "--latency-ms", "100"])
    out = capsys.readouterr().out
    assert "each resource at most 64% busy" in out
    row_100, row_1000 = (
        line for line in out.splitlines() if line.startswith(("| 100 ", "| 1000 "))
    )
    assert "over one Redis" in row_1000 and "over one Redis" not in row_100
