"""The wire form of a message: what a provider receives, and when a body may share a payload's dicts."""

from __future__ import annotations

from lib.core import as_wire, wire_message, wire_payload


def test_a_message_already_in_wire_form_is_shared_and_any_other_is_copied_to_it():
    stored = {"id": "m1", "ts": 1.0, "role": "user", "content": "Hi", "meta": {"x": 1}}
    with_none = {"role": "assistant", "content": "Yes", "name": None}
    payload, _ = wire_payload([stored])
    shared, copied, cleaned = as_wire([payload[0], stored, with_none])
    assert shared is payload[0]  # no second copy of a message the payload already holds
    assert copied == wire_message(stored) == {"role": "user", "content": "Hi"} and copied is not stored
    assert cleaned == {"role": "assistant", "content": "Yes"}  # a None value never goes on the wire
    assert stored["id"] == "m1" and "name" in with_none  # the inputs are left as they were
