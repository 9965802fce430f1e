"""The bundled demo conversation: explore the inspector without chatting or a key.

It mixes English prose, Chinese and Japanese, code, emoji, a long pasted report and a tool call with its
result: the cases where chars/4 goes wrong in both directions. Loading it replays every turn through the
real trimmer, so its turn records look exactly like those of a chat.
"""

from __future__ import annotations

import json
import time
from functools import cache
from pathlib import Path
from typing import Any

from lib.chat.conversation import META_SYSTEM_PROMPT, payload_counts, problems_of
from lib.context import trim_history
from lib.core import (
    DEMO_PROVIDER,
    TurnRecord,
    id_positions,
    id_ranges,
    parse_tools,
    system_hash,
    system_meta_field,
    tools_hash,
    tools_meta_field,
    tools_to_meta,
    wire_payload,
)
from lib.sessions import SessionStore, new_session_id, stamp, validate_session_id
from lib.tokens import count_tool_tokens

DEMO_FILE = Path(__file__).resolve().parents[1] / "data" / "demo_conversation.json"
DEMO_BUDGET = 3_000  # small enough that the long report pushes early turns out


@cache
def demo_data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DEMO_FILE.read_text(encoding="utf-8"))
    return data


def load_demo(
    store: SessionStore,
    session_id: str | None = None,
    *,
    budget: int = DEMO_BUDGET,
    strategy: str = "turns",
) -> str:
    """Write the demo into a new session (messages plus one turn record per user message); return its id."""
    data = demo_data()
    session_id = validate_session_id(session_id) if session_id else new_session_id()
    model, system_prompt = data["model"], data["system_prompt"]
    tools = parse_tools(data.get("tools"))  # the standard set: the demo's tool call is its get_weather
    tool_tokens = count_tool_tokens(tools, model)
    system = [{"role": "system", "content": system_prompt}]
    start = time.time() - 60 * len(data["messages"])
    messages = [stamp({**m, "ts": start + 60 * n}) for n, m in enumerate(data["messages"])]
    positions = id_positions(messages)
    records: list[TurnRecord] = []
    for index, message in enumerate(messages):
        if message["role"] != "user":
            continue
        trim = trim_history([*system, *messages[: index + 1]], budget, model=model, strategy=strategy,
                            tool_tokens=tool_tokens)
        payload, ids = wire_payload(trim.kept)
        counts = payload_counts(payload, model, tools)
        reply = next((m for m in messages[index + 1:] if m["role"] == "assistant" and m.get("content")), None)
        records.append(TurnRecord(
            turn=len(records) + 1, ts=message["ts"], user_id=message["id"],
            assistant_id=reply["id"] if reply else None,
            sent=id_ranges([i for i in ids if i], positions), dropped=id_ranges(trim.dropped_ids, positions),
            sent_count=len(payload), dropped_count=len(trim.dropped), system_sent=True,
            system_hash=system_hash(system_prompt), estimate=counts["estimate"], exact=counts["exact"],
            encoding=counts["encoding"], approximate=counts["approximate"],
            # The demo was never sent to a provider, so it has no provider-reported usage: the inspector
            # leaves that series out rather than showing the exact count under a provider's name.
            usage=None, strategy=strategy, budget=budget,
            reserve=0, provider=DEMO_PROVIDER, model=model, cut=trim.cut,
            problems=tuple(problems_of(payload, counts, budget=budget)),
            tools_hash=tools_hash(tools) if tools else None, tool_names=tuple(t.name for t in tools),
            tool_tokens=counts["tool_tokens"] if tools else None,
        ))
    store.append(session_id, *messages)
    for record in records:
        store.append_turn(session_id, record.to_json())
    store.set_meta(session_id, **{META_SYSTEM_PROMPT: system_prompt, system_meta_field(system_prompt): system_prompt,
                                  "title": data["title"], "demo": "1",
                                  **({tools_meta_field(tools): tools_to_meta(tools)} if tools else {})})
    return session_id
