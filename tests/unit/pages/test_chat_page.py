"""The chat page under streamlit.testing.v1.AppTest, on a real Redis store and the offline model."""

from __future__ import annotations

import socket
import uuid

import pytest
from streamlit.testing.v1 import AppTest

import pages.ui.example as example_page
from lib.chat import FACT, MAX_FILLERS, QUESTION, SEED_TURNS, SMALL_BUDGET, TurnRequest, run_turn
from lib.providers import FORGOT_PHRASE, FORGOTTEN_ANSWER, OfflineProvider
from lib.sessions import RedisStore
from lib.views import DEFAULT_WINDOW
from pages.ui.sidebar import DEFAULT_SYSTEM_PROMPT, TEACHING_BUDGET
from tests.support.apptest_helpers import open_app, shown, use_memory_store

SCRUBBED = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_COMPATIBLE_API_KEY", "DEFAULT_PROVIDER",
            "HISTORY_LAB_STORE", "REDIS_CLUSTER", "TOKEN_BUDGET", "GEMINI_API_KEY", "GOOGLE_API_KEY")


@pytest.fixture
def store_env(monkeypatch, valkey_server) -> RedisStore:
    """Point the app at the test Valkey with a private prefix; return a store reading the same keys."""
    prefix = f"apptest-{uuid.uuid4().hex[:8]}"
    for name in SCRUBBED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REDIS_URL", valkey_server.url)
    monkeypatch.setenv("REDIS_PREFIX", prefix)
    monkeypatch.setenv("OFFLINE_DELAY", "0")
    store = RedisStore(valkey_server.url, prefix=prefix)
    yield store
    for key in store.client.scan_iter(match=f"{prefix}:*"):
        store.client.delete(key)


def new_app(session: str | None = None) -> AppTest:
    return open_app(session=session)


def send(at: AppTest, text: str) -> AppTest:
    at.chat_input(key="chat_input").set_value(text).run()
    assert not at.exception, at.exception
    return at


def shown_messages(at: AppTest) -> list[tuple[str, str]]:
    """(role, body) of every drawn message: the body is its first Markdown (the "Rendered" tab)."""
    return [(m.name, m.markdown[0].value if m.markdown else "") for m in at.chat_message]


def badges(at: AppTest) -> str:
    return " ".join(shown(md.value) for m in at.chat_message for md in m.markdown if "-badge[" in md.value)


def errors(at: AppTest) -> str:
    return " ".join(shown(e.value) for e in at.error)


def test_multi_turn_conversation_is_stored_and_reopened_from_the_url(store_env):
    at = new_app()
    assert not at.exception and not at.error
    for text in ("First question", "Second question", "Third question"):
        send(at, text)
    sid = at.query_params["session"]
    sid = sid[0] if isinstance(sid, list) else sid
    messages = shown_messages(at)
    assert [name for name, _ in messages] == ["user", "assistant"] * 3
    # The model's report of its payload sits under the reply, in a caption; the reply itself is short.
    captions = [c.value for m in at.chat_message if m.name == "assistant" for c in m.caption]
    assert any("I received 6 messages" in c for c in captions)  # system prompt + 5
    assert "I received" not in messages[-1][1]
    assert [m["content"] for m in store_env.get_history(sid)][::2] == ["First question", "Second question",
                                                                      "Third question"]
    # The page reruns after each reply: the timeline beside the chat now shows the newest turn's request.
    assert any(m.value.startswith("**Exact request body of turn 3**") for m in at.markdown)
    assert at.selectbox(key=f"chat_timeline__{sid}__turn").value == 3

    # A fresh browser session with the same ?session= shows the stored conversation.
    again = new_app(sid)
    assert shown_messages(again) == messages
    assert again.session_state["hl_session_id"] == sid


def test_small_budget_marks_dropped_messages_and_the_model_forgets(store_env):
    at = new_app()
    at.sidebar.select_slider(key="sb_budget").set_value(200).run()
    send(at, "My name is Ada Lovelace and I wrote the first program.")
    for n in range(12):
        send(at, f"Tell me something about engine number {n}, please.")
        if any(FORGOT_PHRASE in c.value for c in at.chat_message[-1].caption):
            break
    reports = [" ".join(c.value for c in m.caption) for m in at.chat_message if m.name == "assistant"]
    assert FORGOT_PHRASE in shown(reports[-1])
    assert FORGOT_PHRASE not in shown(reports[0])
    captions = " ".join(c.value for m in at.chat_message for c in m.caption)
    assert "not sent in the newest payload" in captions
    assert any("Context window starts here" in h.value for h in at.get("html"))
    assert "trimmed 2 messages this turn" in badges(at)


def test_delete_session_asks_for_confirmation_then_starts_a_new_chat(store_env):
    at = new_app()
    send(at, "Something to delete")
    sid = at.session_state["hl_session_id"]
    assert store_env.exists(sid)
    at.sidebar.button(key="sb_delete").click().run()
    assert store_env.exists(sid)  # nothing happens before the confirmation
    at.sidebar.button(key="sb_delete_yes").click().run()
    assert not store_env.exists(sid)
    assert at.session_state["hl_session_id"] != sid
    assert not at.chat_message


def test_provider_failure_shows_st_error_and_keeps_the_message(store_env, monkeypatch):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    monkeypatch.setenv("OPENAI_COMPATIBLE_BASE_URL", f"http://127.0.0.1:{closed}/v1")
    monkeypatch.setenv("PROVIDER_MAX_RETRIES", "0")
    at = new_app()
    at.sidebar.selectbox(key="sb_provider").set_value("openai-compatible").run()
    send(at, "Is anyone there?")
    assert f"127.0.0.1:{closed}" in errors(at)
    assert "Your message is saved" in errors(at)
    sid = at.session_state["hl_session_id"]
    assert [m["content"] for m in store_env.get_history(sid)] == ["Is anyone there?"]
    assert not at.exception


def test_missing_key_says_what_to_set(store_env):
    at = new_app()
    at.sidebar.selectbox(key="sb_provider").set_value("openai").run()
    assert "OPENAI_API_KEY" in errors(at)
    assert at.chat_input(key="chat_input").disabled


def test_message_larger_than_the_budget_is_kept_with_a_clear_error(store_env):
    at = new_app()
    at.sidebar.select_slider(key="sb_budget").set_value(200).run()
    send(at, "long " * 400)
    assert "Your message is saved, but it was not sent" in errors(at)
    sid = at.session_state["hl_session_id"]
    assert store_env.get_history(sid)[0]["content"] == "long " * 400


def test_invalid_session_in_the_url_starts_a_new_chat_with_an_error(store_env):
    at = new_app("not a valid id!")
    assert "not valid" in errors(at)
    assert at.session_state["hl_session_id"] != "not a valid id!"


def test_empty_input_is_ignored(store_env):
    at = new_app()
    send(at, "   ")
    assert not at.chat_message and not at.error
    assert not store_env.exists(at.session_state["hl_session_id"])


def test_sidebar_choices_survive_switching_pages(store_env):
    at = new_app()
    at.sidebar.select_slider(key="sb_budget").set_value(500).run()
    at.sidebar.text_area(key="sb_system_prompt").input("Answer in French.").run()
    for page in ("pages/inspector.py", "pages/compare.py", "pages/chat.py"):
        at.switch_page(page).run()
        assert at.sidebar.select_slider(key="sb_budget").value == 500
        assert at.sidebar.text_area(key="sb_system_prompt").value == "Answer in French."


def test_redis_down_shows_an_actionable_error_not_a_traceback(monkeypatch):
    for name in SCRUBBED:
        monkeypatch.delenv(name, raising=False)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    monkeypatch.setenv("REDIS_URL", f"redis://user:hunter2@127.0.0.1:{closed}/0")
    at = new_app()
    assert not at.exception
    message = errors(at)
    assert "not reachable" in message and "Start the server or fix REDIS_URL" in message
    assert "hunter2" not in message and "user:***@127.0.0.1" in message


# -- windowed chat, first minute, sidebar switches -------------------------------------------------------------


def seed_turns(store: RedisStore, count: int) -> str:
    """A session of ``count`` offline turns written through lib.chat.conversation, as the page would write them."""
    sid = f"window-{uuid.uuid4().hex[:8]}"
    provider = OfflineProvider(delay=0)
    for n in range(1, count + 1):
        run_turn(store, provider, TurnRequest(user_text=f"Question {n}", session_id=sid,
                                              system_prompt=DEFAULT_SYSTEM_PROMPT))
    return sid


def user_texts(at: AppTest) -> list[str]:
    return [body for name, body in shown_messages(at) if name == "user"]


def test_windowed_chat_draws_at_most_n_turns_reads_one_slice_and_reaches_turn_1(store_env, monkeypatch):
    sid = seed_turns(store_env, DEFAULT_WINDOW + 5)
    reads: list[tuple[int, int | None]] = []
    real = RedisStore.get_turns

    def counting(self, session_id, start=0, end=None):
        reads.append((start, end))
        return real(self, session_id, start, end)

    monkeypatch.setattr(RedisStore, "get_turns", counting)
    at = new_app(sid)
    assert not at.exception and not at.error
    shown = user_texts(at)
    assert len(shown) == DEFAULT_WINDOW
    assert shown[0] == "Question 6" and shown[-1] == f"Question {DEFAULT_WINDOW + 5}"
    # Only the window's records (plus one before it) are read, never the whole list.
    assert reads and all(start > 0 and end is not None and end - start <= DEFAULT_WINDOW + 2
                         for start, end in reads if start >= 0), reads
    assert "sent 2 (system prompt included)" not in badges(at)  # turn 1 is not drawn
    assert "running total" in badges(at)

    at.button(key=f"chat_earlier__{sid}").click().run()
    assert user_texts(at)[0] == "Question 1" and len(user_texts(at)) == DEFAULT_WINDOW + 5

    at = new_app(sid)
    at.number_input(key=f"chat_jump__{sid}").set_value(1)
    at.button(key=f"chat_jump__{sid}_go").click().run()
    shown = user_texts(at)
    assert shown[0] == "Question 1" and len(shown) == DEFAULT_WINDOW
    assert "sent 2 (system prompt included)" in badges(at)  # turn 1's badges, inside the window
    assert at.button(key=f"chat_newest__{sid}")  # and a way back to the newest turns


def test_unknown_session_in_the_link_says_so_and_offers_a_new_chat(store_env):
    at = new_app("no-such-session-42")
    warnings = " ".join(w.value for w in at.warning)
    assert "`no-such-session-42` was not found" in warnings and "expired" in warnings
    at.button(key="chat_unknown_new").click().run()
    assert at.session_state["hl_session_id"] != "no-such-session-42"
    assert "was not found" not in " ".join(w.value for w in at.warning)


def test_a_session_deleted_in_this_tab_and_reopened_says_deleted_not_not_found(store_env):
    sid = seed_turns(store_env, 1)
    at = new_app(sid)
    at.button(key="sb_delete").click().run()
    at.button(key="sb_delete_yes").click().run()
    assert at.session_state["hl_session_id"] != sid and not store_env.exists(sid)
    at.query_params["session"] = sid  # the browser's Back button: the old link, in the same tab
    at.run()
    warnings = " ".join(w.value for w in at.warning)
    assert f"`{sid}` was deleted at" in warnings and "was not found" not in warnings, warnings


def test_a_link_to_a_session_restores_the_settings_its_turns_ran_with(store_env):
    sid = f"made-{uuid.uuid4().hex[:8]}"
    for text in ("Hello", "What's 2+2?"):
        run_turn(store_env, OfflineProvider(delay=0), TurnRequest(
            user_text=text, session_id=sid, system_prompt="Answer in one word.", strategy="seed", budget=200,
            reserve_tokens=50))
    at = new_app(sid)  # a reload or a shared link: a fresh browser session
    state = at.session_state
    assert (state["sb_strategy"], state["sb_budget"], state["sb_reserve"]) == ("seed", 200, 50)
    assert state["sb_system_prompt"] == "Answer in one word." and state["sb_provider"] == "offline"
    assert not any("Changed since" in i.value for i in at.sidebar.info)
    at.select_slider(key="sb_budget").set_value(500).run()
    notes = " ".join(i.value for i in at.sidebar.info)
    assert "Changed since this session's last turn: budget" in notes, notes
    send(at, "And 4+4?")  # the next turn runs with the new budget, and the session now remembers it
    assert store_env.get_turns(sid, -1)[0]["budget"] == 500
    assert not any("Changed since" in i.value for i in at.sidebar.info)


def test_one_provider_change_draws_the_changed_settings_notice_and_the_new_model_in_that_run(monkeypatch):
    # The browser sends one rerun per change (tests/e2e/test_e2e_sidebar.py counts them): the sidebar must be
    # final after that one run, not after a second.
    use_memory_store(monkeypatch)
    at = send(new_app(), "Hello")
    assert not any("Changed since" in i.value for i in at.sidebar.info)
    at.sidebar.selectbox(key="sb_provider").set_value("anthropic").run()
    notes = " ".join(i.value for i in at.sidebar.info)
    assert "Changed since this session's last turn: provider, model." in notes, notes
    assert at.sidebar.selectbox(key="sb_model__anthropic").value == at.session_state["sb_model__anthropic"]
    assert [s.key for s in at.sidebar.selectbox if str(s.key).startswith("sb_model__")] == ["sb_model__anthropic"]


def test_known_session_in_the_link_has_no_notice(store_env):
    sid = seed_turns(store_env, 1)
    at = new_app(sid)
    assert "was not found" not in " ".join(w.value for w in at.warning)


def test_play_the_example_replays_the_seed_then_trims_until_the_model_forgets(store_env, monkeypatch):
    monkeypatch.setattr(example_page, "PAUSE_S", 0)
    at = new_app()
    at.button(key="chat_example_play").click().run()
    assert not at.exception and not at.error
    sid = at.session_state["hl_session_id"]
    users = user_texts(at)
    assert users[:4] == [step.text for step in (*SEED_TURNS, FACT)]
    assert users[-1] == QUESTION.text and len(users) < len(SEED_TURNS) + 2 + MAX_FILLERS
    answer = [body for name, body in shown_messages(at) if name == "assistant"][-1]
    assert answer.startswith(FORGOTTEN_ANSWER) and "teal" not in answer
    report = shown(" ".join(c.value for c in at.chat_message[-1].caption))
    assert FORGOT_PHRASE in report and "teal" not in report
    replies = [body for name, body in shown_messages(at) if name == "assistant"]
    assert replies[:3] == ["Hi!", "4", "8"]
    assert at.sidebar.select_slider(key="sb_budget").value == SMALL_BUDGET
    assert [s.label for s in at.status] == ["Example finished. Carry on typing, or change the strategy and budget "
                                            "in the sidebar."]
    assert store_env.turn_count(sid) == len(users)
    assert "Running total" in " ".join(md.value for md in at.markdown)


def test_sidebar_shows_switches_from_capabilities_and_prices_offline_as_the_reference(store_env):
    at = new_app()
    assert at.sidebar.toggle(key="sb_strict").value is True
    assert not [t for t in at.sidebar.toggle if t.key == "sb_prompt_caching"]
    at.sidebar.selectbox(key="sb_reference_model").set_value("gpt-4o").run()
    send(at, "How much does this cost?")
    captions = " ".join(shown(c.value) for m in at.chat_message for c in m.caption)
    assert "priced as gpt-4o" in captions and "µ" in captions

    at.sidebar.selectbox(key="sb_provider").set_value("anthropic").run()
    assert [t for t in at.sidebar.toggle if t.key == "sb_prompt_caching"]
    assert not [t for t in at.sidebar.toggle if t.key == "sb_strict"]
    assert not [s for s in at.sidebar.selectbox if s.key == "sb_reference_model"]


def test_strategy_names_a_newcomer_understands(store_env):
    at = new_app()
    options = at.sidebar.selectbox(key="sb_strategy").options
    assert any("Whole turns (safe)" in o for o in options) and any("(naive)" in o for o in options)
    assert at.sidebar.select_slider(key="sb_budget").value == TEACHING_BUDGET


def test_each_message_offers_its_raw_text_and_tokens_on_demand(store_env):
    """Markdown changes what "# heading" and "$x^2$" show: the exact text sent is one click away, with the
    bidi controls marked; no tabs or code blocks are drawn until asked (the chat draws 100 messages)."""
    at = send(new_app(), "# Heading with $x^2$ and \u202eevil").run()  # drawn from the history now
    assert not at.tabs
    before = [c.value for c in at.code]
    assert "# Heading with $x^2$ and ⟪U+202E⟫evil" not in before
    user_id = next(b.key for b in at.button if b.key and b.key.startswith("chat_tokens_") and b.label ==
                   "Raw text & tokens")
    at.button(key=user_id).click().run()
    raw = [c.value for c in at.code]
    assert "# Heading with $x^2$ and ⟪U+202E⟫evil" in raw
    assert at.button(key=user_id).label == "Hide raw text & tokens"
    assert any("o200k_base" in c.value for c in at.caption)  # the exact counts beside the estimate
    at.button(key=user_id).click().run()
    assert [c.value for c in at.code] == before


def test_gemini_without_a_key_says_what_to_set(store_env):
    at = new_app()
    at.sidebar.selectbox(key="sb_provider").set_value("gemini").run()
    assert "GEMINI_API_KEY (or GOOGLE_API_KEY)" in errors(at)
    assert at.chat_input(key="chat_input").disabled


def test_a_gemini_chat_turn_with_an_explicit_cache_through_the_fake_server(store_env, monkeypatch, fake_llm):
    monkeypatch.setenv("GEMINI_API_KEY", "AIzaSyCHAT-0123456789abcdefghijklmnopqrs")
    monkeypatch.setenv("GEMINI_BASE_URL", fake_llm.gemini_url)
    monkeypatch.setenv("PROVIDER_MAX_RETRIES", "0")
    monkeypatch.setenv("TOKEN_BUDGET", "20000")  # room for a system prompt above the 2,048-token minimum
    at = new_app()
    at.sidebar.selectbox(key="sb_provider").set_value("gemini").run()
    at.sidebar.selectbox(key="sb_model__gemini").set_value("gemini-2.5-flash").run()
    toggle = at.sidebar.toggle(key="sb_prompt_caching")
    assert "caches.create" in toggle.proto.help
    toggle.set_value(True).run()
    at.sidebar.text_area(key="sb_system_prompt").set_value("Answer from this. " + "Kept words. " * 900).run()
    send(at, "First question")
    assert not errors(at) and not at.exception
    assert [r["path"].rsplit("/", 1)[-1] for r in fake_llm.requests] == [
        "cachedContents", "gemini-2.5-flash:streamGenerateContent"]
    assert fake_llm.bodies(":streamGenerateContent")[0]["cachedContent"]
    captions = " ".join(c.value for c in at.caption)
    assert "explicit cache created" in captions and "kept 5 min" in captions
