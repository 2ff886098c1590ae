"""expected_result / output_hash / failure_draw are pure and well-formed."""

from __future__ import annotations

import hashlib
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from stormproof.harness.shunya import canonical_json, expected_result, failure_draw, output_hash

job_ids = st.one_of(
    st.text(min_size=0, max_size=64),
    st.binary(min_size=16, max_size=16).map(lambda b: "shj_" + b.hex()),
)


@settings(max_examples=200, deadline=None)
@given(job_ids)
def test_result_is_deterministic_and_in_range(job_id: str) -> None:
    first = expected_result(job_id)
    assert first == expected_result(job_id)
    assert output_hash(first) == output_hash(expected_result(job_id))
    assert set(first) == {"summary", "sentiment", "lead_score", "outcome", "talk_ratio"}
    assert first["sentiment"] in {"positive", "neutral", "negative"}
    assert first["outcome"] in {"won", "lost", "follow_up"}
    assert isinstance(first["lead_score"], int) and 0 <= first["lead_score"] <= 100
    assert 0.05 <= first["talk_ratio"] <= 0.95
    # two decimals, never integral: its JSON text is the same in every language
    text = json.dumps(first["talk_ratio"])
    assert text.startswith("0.") and len(text) <= 4
    assert job_id in first["summary"]


@settings(max_examples=200, deadline=None)
@given(job_ids)
def test_failure_draw_is_a_stable_fraction(job_id: str) -> None:
    draw = failure_draw(job_id)
    assert 0.0 <= draw < 1.0
    assert draw == failure_draw(job_id)


def test_different_ids_give_different_results() -> None:
    ids = [f"shj_{i:032x}" for i in range(200)]
    hashes = {output_hash(expected_result(i)) for i in ids}
    assert len(hashes) == len(ids)
    # the fields actually vary across ids (not a constant with a varying summary)
    results = [expected_result(i) for i in ids]
    assert len({r["sentiment"] for r in results}) == 3
    assert len({r["outcome"] for r in results}) == 3
    assert len({r["lead_score"] for r in results}) > 50


def test_output_hash_is_sha256_of_canonical_json_independent_of_key_order() -> None:
    result = expected_result("shj_" + "ab" * 16)
    reordered = dict(reversed(list(result.items())))
    expected = hashlib.sha256(
        json.dumps(result, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    assert output_hash(result) == output_hash(reordered) == expected
    assert canonical_json({"b": 1, "a": [1, 2]}) == b'{"a":[1,2],"b":1}'


def test_output_hash_changes_when_any_field_changes() -> None:
    result = dict(expected_result("shj_" + "cd" * 16))
    base = output_hash(result)
    for key, value in [("lead_score", result["lead_score"] + 1), ("summary", "x"), ("talk_ratio", 0.5001)]:
        assert output_hash({**result, key: value}) != base
