"""Hypothesis strategies for stored conversations, and the partition check every trimmer must pass."""

from __future__ import annotations

import itertools

from hypothesis import strategies as st

_ids = itertools.count()


def msg(role: str, content, **extra) -> dict:
    return {"id": f"m{next(_ids)}", "role": role, "content": content, **extra}


texts = st.one_of(
    st.text(max_size=120),
    st.sampled_from(["東京の天気は？", "🎉🚀🔥", "def f(x):\n    return x * 2\n", "ok", "x" * 400]),
)


@st.composite
def turn(draw) -> list[dict]:
    messages = [msg("user", draw(texts))]
    if draw(st.booleans()):
        call_id = f"call_{next(_ids)}"
        messages.append(msg("assistant", None, tool_calls=[
            {"id": call_id, "type": "function", "function": {"name": "lookup", "arguments": "{}"}}]))
        messages.append(msg("tool", draw(texts), tool_call_id=call_id))
    if draw(st.booleans()) or len(messages) == 1:
        messages.append(msg("assistant", draw(texts)))
    if draw(st.integers(0, 5)) == 0:
        messages.append(msg("user", [{"type": "text", "text": draw(texts)}], name="alice"))
    return messages


@st.composite
def conversation(draw) -> list[dict]:
    messages = [msg("system", draw(texts))] if draw(st.booleans()) else []
    for t in draw(st.lists(turn(), min_size=1, max_size=12)):
        messages.extend(t)
    return messages


def assert_partition(result, messages):
    kept_ids, dropped_ids = [m["id"] for m in result.kept], [m["id"] for m in result.dropped]
    order = {m["id"]: i for i, m in enumerate(messages)}
    assert sorted(kept_ids + dropped_ids, key=order.get) == [m["id"] for m in messages]
    assert not set(kept_ids) & set(dropped_ids)
    assert kept_ids == sorted(kept_ids, key=order.get)
    assert dropped_ids == sorted(dropped_ids, key=order.get)
