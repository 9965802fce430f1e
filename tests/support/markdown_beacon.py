"""A session whose stored values are Markdown beacons, for the page tests and the browser test.

Every stored string a page may print (the turn record's model, provider, error, problems, response id) holds
an image pointing at ``base``. The message texts stay harmless: message bodies are rendered Markdown on
purpose, safe by other means (lib.core.content.safe_markdown), and would hide what these tests look for.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from lib.chat import TurnRequest, run_turn
from lib.providers import get_provider
from lib.sessions import MemoryStore, new_session_id


def payloads(base: str) -> list[str]:
    """The image alone, after a newline that would end a code span, and breaking out of backticks."""
    return [f"![m]({base}/plain.png)", f"gpt-4o`\n![m]({base}/newline.png)", f"x` ![m]({base}/tick.png) `y"]


def hostile_session(store: Any, payload: str) -> str:
    """Two answered turns and one failed turn whose records carry ``payload``; returns the new session id."""
    scratch = MemoryStore()
    offline = get_provider("offline", delay=0)
    sid = None
    for text in ("Tell me about trimming.", "And about caching?"):
        sid = run_turn(scratch, offline, TurnRequest(user_text=text, session_id=sid, budget=200,
                                                     model="gpt-4o-mini")).session_id
    assert sid is not None
    history, records = scratch.get_history(sid), scratch.get_turns(sid)
    target = new_session_id()
    store.append_messages(target, *history)
    question = store.append_messages(target, {"role": "user", "content": "A question that failed."})[0]
    for record in _poisoned(records, payload, failed_user_id=str(question["id"])):
        store.append_turn(target, record)
    return target


def _poisoned(records: list[dict[str, Any]], payload: str, *, failed_user_id: str) -> Iterator[dict[str, Any]]:
    for record in records:
        yield {**record, "model": payload, "previous_response_id": payload}
    last = records[-1]
    yield {**last, "turn": last["turn"] + 1, "user_id": failed_user_id, "assistant_id": None, "usage": None,
           "cost": None, "model": payload, "provider": payload, "error": payload, "error_type": payload,
           "problems": [payload]}


# Element fields that Streamlit renders as Markdown (bodies, labels, tooltips, captions).
MARKDOWN_FIELDS = ("body", "label", "help", "caption", "placeholder")
# Elements whose text is shown verbatim, never as Markdown.
VERBATIM = {"code", "text", "json", "arrow_data_frame", "arrow_vega_lite_chart", "html"}
# Widgets whose options are plain text (a radio's options are Markdown).
PLAIN_OPTIONS = {"selectbox", "multiselect", "select_slider"}


def markdown_strings(at: Any) -> Iterator[tuple[str, str]]:
    """(element type, text) for every Markdown-rendered string on an AppTest page, blocks (tabs, expanders)
    included."""
    stack = [at._tree]
    while stack:
        node = stack.pop()
        stack.extend(getattr(node, "children", {}).values())
        proto = getattr(node, "proto", None)
        kind = getattr(node, "type", "")
        if proto is None or kind in VERBATIM:
            continue
        yield from _fields(kind, proto)


def _fields(kind: str, proto: Any) -> Iterator[tuple[str, str]]:
    for descriptor, value in proto.ListFields():
        if hasattr(value, "ListFields"):  # a nested message (a widget's default, a block's settings)
            yield from _fields(kind, value)
        elif descriptor.name in MARKDOWN_FIELDS and isinstance(value, str):
            yield kind, value
        elif descriptor.name == "options" and kind not in PLAIN_OPTIONS and not isinstance(value, str):
            yield from ((kind, v) for v in value if isinstance(v, str))
