import json
import math
import copy
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stormproof.harness.history import NO_EFFECT_STATUSES, Op, classify, freeze, op_from_json, op_to_json
from stormproof.harness.history.op import FrozenMap

scalars = st.none() | st.booleans() | st.integers(-2**63, 2**63) | st.text(max_size=8) | st.floats(
    allow_nan=False, allow_infinity=False)
values = st.recursive(
    scalars | st.frozensets(st.text(max_size=5), max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=12,
).filter(lambda v: not (isinstance(v, dict) and list(v) == ["$set"]))
mappings = st.dictionaries(st.text(max_size=8), values, max_size=5).filter(lambda d: "$set" not in d or len(d) > 1)
ops = st.builds(
    Op,
    index=st.integers(0, 10**9),
    type=st.sampled_from(["invoke", "ok", "fail", "info"]),
    process=st.text(max_size=10),
    f=st.text(max_size=20),
    tenant=st.none() | st.text(max_size=10),
    args=mappings,
    status=st.none() | st.integers(100, 599),
    result=mappings,
    error=st.none() | st.text(max_size=20),
    time_ns=st.integers(0, 2**62),
    wall=st.floats(0, 4e9, allow_nan=False),
    invoke_index=st.none() | st.integers(0, 10**9),
)


@settings(derandomize=True, max_examples=300, deadline=None)
@given(ops)
def test_json_round_trip_is_exact(op: Op) -> None:
    line = op_to_json(op)
    assert "\n" not in line
    back = op_from_json(line)
    assert back == op
    assert op_to_json(back) == line  # same bytes again: types (tuple, frozenset, bool) survived


def test_schema_line() -> None:
    op = Op(1, "ok", "user-3", "session.start", "c1", {"appointment_id": "a1"}, 201,
            {"id": "s1", "company_ids_seen": {"c1"}, "replayed": False}, None, 1200, 1718000000.5, 0)
    assert op_to_json(op) == (
        '{"index":1,"type":"ok","process":"user-3","f":"session.start","tenant":"c1",'
        '"args":{"appointment_id":"a1"},"status":201,"result":{"id":"s1","company_ids_seen":{"$set":["c1"]},'
        '"replayed":false},"error":null,"time_ns":1200,"wall":1718000000.5,"invoke_index":0}'
    )
    assert set(json.loads(op_to_json(op))) == {"index", "type", "process", "f", "tenant", "args", "status", "result",
                                              "error", "time_ns", "wall", "invoke_index"}


def test_op_is_deeply_immutable() -> None:
    args = {"ids": ["a", "b"], "nested": {"k": [1]}, "seen": {"c1"}}
    op = Op(0, "invoke", "p", "f", args=args)
    args["ids"].append("c")  # the caller's dict is copied
    assert op.args["ids"] == ("a", "b")
    assert type(op.args) is FrozenMap and type(op.args["nested"]) is FrozenMap
    assert op.args["seen"] == frozenset({"c1"})
    for change in (lambda m: m.__setitem__("x", 1), lambda m: m.__delitem__("ids"), lambda m: m.update(x=1),
                   lambda m: m.pop("ids"), lambda m: m.popitem(), lambda m: m.setdefault("x", 1),
                   lambda m: m.clear(), lambda m: m.__ior__({"x": 1})):
        with pytest.raises(TypeError):
            change(op.args)
    assert dict(op.args) == {"ids": ("a", "b"), "nested": {"k": (1,)}, "seen": frozenset({"c1"})}
    for again in (pickle.loads(pickle.dumps(op)), copy.deepcopy(op)):  # rebuilt whole, still read-only
        assert again == op and type(again.args) is FrozenMap and type(again.args["nested"]) is FrozenMap
    with pytest.raises(AttributeError):
        op.status = 200  # type: ignore[misc]
    assert hash(op) == hash(Op(0, "invoke", "p", "f"))  # hashable; mappings excluded from the hash


def test_non_json_values_are_refused() -> None:
    with pytest.raises(TypeError):
        freeze(object())
    with pytest.raises(TypeError):
        Op(0, "invoke", "p", "f", args={1: "x"})
    with pytest.raises(ValueError):
        op_to_json(Op(0, "invoke", "p", "f", wall=math.nan))
    with pytest.raises(ValueError):
        op_from_json('{"index":0,"type":"done","process":"p","f":"f"}')


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [(200, None, "ok"), (201, None, "ok"), (204, None, "ok"), (400, None, "fail"), (404, None, "fail"),
     (409, None, "fail"), (422, None, "fail"), (429, None, "fail"), (405, None, "info"), (408, None, "info"),
     (500, None, "info"), (503, None, "info"), (None, None, "info"), (None, TimeoutError(), "info"),
     (201, ConnectionResetError(), "info"), (302, None, "info")],
)
def test_classify(status: int | None, error: object, expected: str) -> None:
    assert classify(status, error) == expected


def test_no_effect_statuses_are_the_contracts() -> None:
    assert NO_EFFECT_STATUSES == {400, 401, 403, 404, 409, 413, 415, 422, 429}
