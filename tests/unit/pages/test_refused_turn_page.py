"""The chat page under AppTest: a refused turn (a 200 KB message over the budget, stored but never sent) claims
nothing that did not happen: no request body, no trimming or dropping badges, no diff and no cost."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.support.apptest_helpers import open_app, shown, use_memory_store

BIG = "All the logs from last night, pasted whole. " * 4_600  # about 200 KB


def send(at: AppTest, text: str) -> None:
    at.chat_input(key="chat_input").set_value(text).run()
    assert not at.exception, at.exception


def test_a_refused_turn_shows_no_body_no_trim_no_diff_and_no_cost(monkeypatch):
    use_memory_store(monkeypatch)
    at = open_app()
    at.sidebar.select_slider(key="sb_budget").set_value(500).run()
    for text in ("Hello", "What's 2+2?"):
        send(at, text)
    send(at, BIG)
    assert "Your message is saved, but it was not sent" in " ".join(shown(e.value) for e in at.error)
    sid = at.session_state["hl_session_id"]
    assert at.selectbox(key=f"chat_timeline__{sid}__turn").value == 3  # the timeline shows the refused turn

    markdown = " ".join(shown(m.value) for m in at.markdown)
    assert "Exact request body of turn 3" not in markdown and "Difference from the previous" not in markdown
    assert '"messages": []' not in " ".join(c.value for c in at.code)  # no body for a request never made
    assert any("No request was made in turn 3" in shown(i.value) for i in at.info)
    refused = " ".join(shown(m.value) for m in at.markdown if "-badge[" in m.value and "not sent" in m.value)
    assert "not sent" in refused
    for claim in ("trimmed", "dropped", "cost", "sent 0", "µ$"):
        assert claim not in refused, (claim, refused)

    # A turn that did go out still shows its body, its badges and its cost.
    at.selectbox(key=f"chat_timeline__{sid}__turn").set_value(2).run()
    markdown = " ".join(shown(m.value) for m in at.markdown)
    assert "Exact request body of turn 2" in markdown and "Difference from the previous request" in markdown
    assert any('"messages": [' in c.value and "What's 2+2?" in c.value for c in at.code)
