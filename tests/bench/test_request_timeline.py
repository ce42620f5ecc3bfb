"""The timeline's arithmetic (bench/request_timeline.py), from made-up records: no stack."""

from __future__ import annotations

from bench.request_timeline import STAGE_NAMES, gaps, timeline_table

MS = 1_000_000


def record(**at_ms: float) -> dict[str, int]:
    return {k: int(v * MS) for k, v in at_ms.items()}


def test_gaps_are_between_consecutive_stages_in_the_critical_paths_order():
    r = record(client_send=0, api_received=1, api_admitted=3, w_read=4, client_received=10)
    got = gaps([r])
    assert got == {
        ("client_send", "api_received"): [1.0],
        ("api_received", "api_admitted"): [2.0],
        ("api_admitted", "w_read"): [1.0],
        ("w_read", "client_received"): [6.0],
    }


def test_a_stage_a_record_lacks_is_skipped_and_the_side_pair_is_apart():
    a = record(client_send=0, api_received=2, api_admitted=3, api_queued=9, client_received=10)
    b = record(client_send=0, api_received=4, api_admitted=5, api_queued=6, client_received=12)
    got = gaps([a, b])
    assert got[("client_send", "api_received")] == [2.0, 4.0]
    assert ("api_admitted", "api_queued") not in got  # off the critical path
    assert "api_queued" not in STAGE_NAMES
    rows = timeline_table([a, b])
    assert rows[-2] == "| client_send | client_received (round trip) | 11.00 | 11.80 |"
    assert rows[-1].startswith("| api_admitted | api_queued: ") and rows[-1].endswith(
        "| 3.50 | 5.50 |"
    )


def test_the_tables_gap_figures_are_median_and_90th_percentile():
    records = [record(client_send=0, api_received=float(i)) for i in range(1, 11)]
    (row,) = [r for r in timeline_table(records) if r.startswith("| client_send | api_received")]
    assert row.endswith("| 5.50 | 9.10 |")  # numpy's linear interpolation
