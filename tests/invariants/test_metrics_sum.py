"""Summing several processes' expositions (the docker backend's scrape): counters add up series by series."""

from stormproof.harness.invariants.metrics import metric_sum, parse_metrics, sum_expositions

APP = """# HELP webhook_dedupe_misses_total First applications.
# TYPE webhook_dedupe_misses_total counter
webhook_dedupe_misses_total{source="webhook"} 61.0
webhook_dedupe_misses_total{source="poll"} 0.0
webhook_dedupe_misses_created{source="webhook"} 1.7e9
"""
WORKER = """# HELP webhook_dedupe_misses_total First applications.
# TYPE webhook_dedupe_misses_total counter
webhook_dedupe_misses_total{source="poll"} 34.0
# HELP tasks_finished_total Tasks ended.
# TYPE tasks_finished_total counter
tasks_finished_total{name="shunya.poll",outcome="succeeded"} 95.0
"""


def test_series_add_up_across_processes_and_read_back_the_same() -> None:
    summed = parse_metrics(sum_expositions([APP, WORKER]))
    assert metric_sum(summed, "webhook_dedupe_misses_total") == 95.0  # 61 by the app + 34 by the worker
    assert summed['webhook_dedupe_misses_total{source="poll"}'] == 34.0
    assert summed['tasks_finished_total{name="shunya.poll",outcome="succeeded"}'] == 95.0
    assert not any(key.startswith("webhook_dedupe_misses_created") for key in summed)
    assert metric_sum(parse_metrics(APP), "webhook_dedupe_misses_total") == 61.0  # the app alone: the bug


def test_one_exposition_sums_to_itself() -> None:
    once = parse_metrics(sum_expositions([WORKER]))
    assert once == parse_metrics(WORKER)
    assert sum_expositions([]) == ""
