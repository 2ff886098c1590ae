"""Toxic attributes are validated, defaulted and echoed exactly as upstream Toxiproxy's
``AddToxicJson``/``UpdateToxicJson`` do (its Go structs decoded by ``encoding/json``):
JSON types are checked, values are not. Transport-free: the collection is driven directly."""

from __future__ import annotations

import dataclasses
import json

import pytest

from stormproof.harness.faults.errors import ApiError
from stormproof.harness.faults.toxic_collection import ToxicCollection
from stormproof.harness.faults.toxics import lookup, names


def add(body: dict) -> dict:
    return ToxicCollection().add_json(json.dumps(body).encode()).to_json()


def test_every_upstream_toxic_is_registered_with_upstream_zero_defaults() -> None:
    expected = {
        "bandwidth": {"rate": 0},
        "latency": {"latency": 0, "jitter": 0},
        "limit_data": {"bytes": 0},
        "noop": {},
        "reset_peer": {"timeout": 0},
        "slicer": {"average_size": 0, "size_variation": 0, "delay": 0},
        "slow_close": {"delay": 0},
        "timeout": {"timeout": 0},
    }
    assert names() == sorted(expected)
    for type_, attributes in expected.items():
        assert add({"type": type_})["attributes"] == attributes


@pytest.mark.parametrize("type_", ["bandwidth", "latency", "limit_data", "reset_peer", "slicer", "slow_close", "timeout"])
@pytest.mark.parametrize("value", [-1, -(1 << 63), (1 << 63) - 1, 0, 7])
def test_any_int64_is_accepted_for_every_attribute(type_: str, value: int) -> None:
    for field in (f.name for f in dataclasses.fields(lookup(type_))):
        assert add({"type": type_, "attributes": {field: value}})["attributes"][field] == value


@pytest.mark.parametrize("value", [1.5, 1.0, 1e3, "1", True, [1], {"a": 1}, 1 << 63, -(1 << 63) - 1])
def test_a_value_go_cannot_decode_into_an_int64_is_refused(value) -> None:
    with pytest.raises(ApiError) as caught:
        add({"type": "latency", "attributes": {"latency": value}})
    assert caught.value.status == 400
    assert caught.value.message.startswith("bad request body: json: cannot unmarshal ")
    assert "LatencyToxic.attributes.latency" in caught.value.message


def test_slicer_errors_name_go_int_and_reset_peer_its_go_struct() -> None:
    with pytest.raises(ApiError, match=r"SlicerToxic\.attributes\.delay of type int$"):
        add({"type": "slicer", "attributes": {"delay": "x"}})
    with pytest.raises(ApiError, match=r"ResetToxic\.attributes\.timeout of type int64$"):
        add({"type": "reset_peer", "attributes": {"timeout": 0.5}})


@pytest.mark.parametrize(("toxicity", "echoed"), [(0, 0), (1, 1), (1.5, 1.5), (-0.5, -0.5), (0.1, 0.1), (2, 2)])
def test_toxicity_is_any_float32_and_echoed_as_go_does(toxicity: float, echoed: float) -> None:
    assert add({"type": "noop", "toxicity": toxicity})["toxicity"] == echoed


def test_toxicity_is_rounded_to_float32() -> None:
    assert add({"type": "noop", "toxicity": 0.123456789})["toxicity"] == 0.12345679


@pytest.mark.parametrize("toxicity", ["1", True, 1e39])
def test_a_toxicity_that_is_not_a_float32_is_refused(toxicity) -> None:
    with pytest.raises(ApiError, match="ToxicWrapper.toxicity of type float32"):
        add({"type": "noop", "toxicity": toxicity})


def test_nulls_leave_defaults_and_unknown_keys_are_ignored() -> None:
    toxic = add({"type": "latency", "name": None, "stream": None, "toxicity": None,
                 "attributes": {"latency": None, "jitter": 3, "nonsense": "x"}})
    assert toxic == {"attributes": {"latency": 0, "jitter": 3}, "name": "latency_downstream",
                     "type": "latency", "stream": "downstream", "toxicity": 1}
    assert add({"type": "latency", "attributes": None})["attributes"] == {"latency": 0, "jitter": 0}


def test_keys_match_case_insensitively_and_the_stream_is_echoed_as_given() -> None:
    toxic = add({"Type": "latency", "STREAM": "UpStream", "attributes": {"Latency": 5}})
    assert toxic["name"] == "latency_UpStream" and toxic["stream"] == "UpStream"
    assert toxic["attributes"] == {"latency": 5, "jitter": 0}
    collection = ToxicCollection()
    entry = collection.add_json(b'{"type": "latency", "stream": "UPSTREAM"}')
    assert collection.chain("upstream") == (entry,) and collection.chain("downstream") == ()


def test_wrapper_type_errors_come_before_the_stream_check() -> None:
    with pytest.raises(ApiError, match="ToxicWrapper.stream of type string"):
        add({"type": "latency", "stream": 5})
    with pytest.raises(ApiError, match="stream was invalid"):
        add({"type": "nope", "stream": "sideways"})
    with pytest.raises(ApiError, match="invalid toxic type"):
        add({"stream": "upstream"})


def test_update_merges_attributes_keeps_toxicity_unless_given_and_ignores_the_rest() -> None:
    collection = ToxicCollection()
    collection.add_json(b'{"type": "slicer", "toxicity": 0.5, "attributes": {"average_size": 10, "delay": 4}}')
    updated = collection.update_json("slicer_downstream", json.dumps(
        {"attributes": {"size_variation": -2}, "toxicity": None, "stream": "upstream", "type": "latency"}
    ).encode()).to_json()
    assert updated == {"attributes": {"average_size": 10, "size_variation": -2, "delay": 4},
                       "name": "slicer_downstream", "type": "slicer", "stream": "downstream", "toxicity": 0.5}
    assert collection.update_json("slicer_downstream", b'{"toxicity": 0}').to_json()["toxicity"] == 0


@pytest.mark.parametrize(
    "attributes",
    [{"average_size": 0}, {"average_size": -5}, {"average_size": 1, "size_variation": -5},
     {"average_size": 3, "size_variation": 100}, {"average_size": 1}],
)
def test_slicer_cuts_terminate_and_cover_the_chunk_for_any_attributes(attributes: dict) -> None:
    toxic = lookup("slicer").from_attributes(attributes)
    for size in (0, 1, 2, 17, 4096):
        points = toxic.cut_points(size)
        assert points[0] == 0 and points[-1] == size
        assert all(a < b for a, b in zip(points, points[1:])) or size == 0
