"""The bound on a deletion request's life, from the server's own clock (load.deadlines)."""

from __future__ import annotations

import time

from stormproof.harness.load.deadlines import deletion_life_bound_s, expiry_args


def test_life_bound_is_expires_at_less_the_answer_date_plus_a_second() -> None:
    # Date is cut to the second (07:50:01.9 shows as 07:50:01): the bound never falls short of what was left.
    assert deletion_life_bound_s("2026-12-03T07:50:05.250000Z", "Thu, 03 Dec 2026 07:50:01 GMT") == 5.25
    assert deletion_life_bound_s("2026-12-03T07:50:05.250000+00:00", "Thu, 03 Dec 2026 07:50:01 GMT") == 5.25


def test_life_bound_is_unknown_without_both_clocks_readable() -> None:
    """No late confirmation is sent (and none is judged late) when the app's answer cannot say."""
    date = "Thu, 03 Dec 2026 07:50:01 GMT"
    assert deletion_life_bound_s("2026-12-03T07:50:05Z", None) is None
    assert deletion_life_bound_s(None, date) is None
    assert deletion_life_bound_s("not a time", date) is None
    assert deletion_life_bound_s("2026-12-03T07:50:05", date) is None  # no zone: which clock?
    assert deletion_life_bound_s("2026-12-03T07:50:05Z", "yesterday") is None


def test_expiry_args_say_how_far_past_the_life_a_confirmation_went() -> None:
    answered = time.monotonic() - 6.0
    late = expiry_args(5.0, answered)
    assert late["expired"] is True and 0.9 < late["past_expiry_s"] < 2.0
    early = expiry_args(30.0, answered)
    assert early["expired"] is False and early["past_expiry_s"] < 0
    assert expiry_args(None, answered) == {}
