"""Two app processes (`streamlit run app.py` on two ports) on one external Valkey through REDIS_URL: turns
of one session alternate between them over the API and in two browsers. Nothing is lost or duplicated,
turn numbers stay unique and in order, and each process sees the other's turns at once, although each
keeps its own cache of what it has read (lib/sessions/cache.py). The cache's cases that one app process
cannot reach through the API alone (the cap trimming the head, a clear, an import) are driven through two
RedisStores, which is what two processes are: one cache each, one server.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import pytest

from lib.sessions import RedisStore
from tests.support.app_server import AppServer
from tests.support.browser import message_bodies, open_app, send, session_in_url

pytestmark = [pytest.mark.redis, pytest.mark.server]
TURNS_EACH = 6


@pytest.fixture(scope="module")
def pair(tmp_path_factory, valkey_server) -> Iterator[tuple[AppServer, AppServer, RedisStore]]:
    """Two app processes with their own data dirs (no embedded server) on one Valkey and one key prefix."""
    prefix = f"two-{uuid.uuid4().hex[:8]}"
    apps = [AppServer(tmp_path_factory.mktemp(f"app{n}"), tmp_path_factory.mktemp(f"log{n}") / "app.log",
                      REDIS_URL=valkey_server.url, REDIS_PREFIX=prefix) for n in (1, 2)]
    try:
        for app in apps:
            app.start()
        yield apps[0], apps[1], RedisStore(valkey_server.url, prefix=prefix)
    finally:
        for app in apps:
            app.stop()
        cleanup = RedisStore(valkey_server.url, prefix=prefix).client
        keys = list(cleanup.scan_iter(match=f"{prefix}:*"))
        if keys:
            cleanup.delete(*keys)


def _turn(client: httpx.Client, text: str, session_id: str | None) -> dict[str, Any]:
    response = client.post("/api/chat", json={"message": text, **({"sessionId": session_id} if session_id else {})})
    assert response.status_code == 200, response.text
    return response.json()


def _session(client: httpx.Client, session_id: str) -> dict[str, Any]:
    response = client.get(f"/api/chat/{session_id}")
    assert response.status_code == 200, response.text
    return response.json()


def _users(session: dict[str, Any]) -> list[str]:
    return [m["content"] for m in session["messages"] if m["role"] == "user"]


def _assert_whole(session: dict[str, Any], sent: list[str]) -> None:
    """Every sent text once, every message id once, turn records numbered 1..n in stored order."""
    assert sorted(_users(session)) == sorted(sent)
    assert not [mid for mid, n in Counter(m["id"] for m in session["messages"]).items() if n > 1]
    numbers = [t["turn"] for t in session["turns"]]
    assert sorted(numbers) == list(range(1, len(sent) + 1))


def test_alternating_turns_over_the_api_are_seen_at_once_by_the_other_process(pair):
    first, second, _ = pair
    with httpx.Client(base_url=first.url, timeout=60) as a, httpx.Client(base_url=second.url, timeout=60) as b:
        sid, sent = None, []
        for n in range(2 * TURNS_EACH):
            writer, reader = (a, b) if n % 2 == 0 else (b, a)
            text = f"turn {n + 1} via {'A' if writer is a else 'B'}"
            body = _turn(writer, text, sid)
            sid = body["sessionId"]
            sent.append(text)
            assert body["turn"] == n + 1  # unique and in order across the two processes
            # The other process has read this session before (its cache holds the earlier messages):
            # the new turn must be there at once, reply included, in order.
            seen = _session(reader, sid)
            assert _users(seen) == sent
            assert [m["id"] for m in seen["messages"]][-1] == body["assistantMessageId"]
            assert [t["turn"] for t in seen["turns"]] == list(range(1, n + 2))
        assert sid is not None
        seen_a, seen_b = _session(a, sid), _session(b, sid)
        assert (seen_a["messages"], seen_a["turns"]) == (seen_b["messages"], seen_b["turns"])
        _assert_whole(seen_a, sent)


def test_both_processes_writing_one_session_at_once_lose_and_repeat_nothing(pair):
    first, second, _ = pair
    with httpx.Client(base_url=first.url, timeout=60) as a:
        sid = _turn(a, "opening", None)["sessionId"]
    sent, numbers, lock = ["opening"], [1], threading.Lock()

    def writer(url: str, name: str) -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            for n in range(TURNS_EACH):
                text = f"{name} {n}"
                body = _turn(client, text, sid)
                with lock:
                    sent.append(text)
                    numbers.append(body["turn"])

    threads = [threading.Thread(target=writer, args=(app.url, name)) for app, name in ((first, "A"), (second, "B"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert sorted(numbers) == list(range(1, 2 * TURNS_EACH + 2))  # each number handed out once
    with httpx.Client(base_url=first.url, timeout=60) as a, httpx.Client(base_url=second.url, timeout=60) as b:
        for client in (a, b):
            _assert_whole(_session(client, sid), sent)


@pytest.mark.e2e
def test_alternating_turns_in_two_browsers_on_two_processes(pair, browser):
    first, second, store = pair
    contexts = [browser.new_context(viewport={"width": 1400, "height": 1000}) for _ in range(2)]
    try:
        page_a, page_b = (context.new_page() for context in contexts)
        for page in (page_a, page_b):
            page.set_default_timeout(30_000)
        open_app(page_a, first)
        send(page_a, "first, typed on A")
        sid = session_in_url(page_a)
        open_app(page_b, second, f"?session={sid}")
        assert _user_texts(page_b) == ["first, typed on A"]  # B shows A's turn without a reload
        send(page_b, "second, typed on B")
        send(page_a, "third, typed on A")  # A's next run shows B's turn before its own
        assert _user_texts(page_a) == ["first, typed on A", "second, typed on B", "third, typed on A"]
        send(page_b, "fourth, typed on B")
        expected = ["first, typed on A", "second, typed on B", "third, typed on A", "fourth, typed on B"]
        assert _user_texts(page_b) == expected
        history = store.get_history(sid)
        assert [m["content"] for m in history if m["role"] == "user"] == expected
        assert len({m["id"] for m in history}) == len(history) == 8  # four turns, a reply each, nothing twice
        assert [t["turn"] for t in store.get_turns(sid)] == [1, 2, 3, 4]
    finally:
        for context in contexts:
            context.close()


def _user_texts(page) -> list[str]:
    # Chat messages alternate user, assistant: the user's are the even ones.
    return [text.strip() for text in message_bodies(page)[::2]]


# -- the per-process cache, with one RedisStore per process -----------------------------------------------


@pytest.fixture
def two_caches(valkey_server) -> Iterator[tuple[RedisStore, RedisStore]]:
    prefix = f"twocache-{uuid.uuid4().hex[:8]}"
    stores = (RedisStore(valkey_server.url, prefix=prefix, max_messages=10),
              RedisStore(valkey_server.url, prefix=prefix, max_messages=10))
    yield stores
    keys = list(stores[0].client.scan_iter(match=f"{prefix}:*"))
    if keys:
        stores[0].client.delete(*keys)


def _texts(store: RedisStore, sid: str) -> list[str]:
    return [m["content"] for m in store.get_history(sid)]


def test_a_cache_follows_appends_and_the_cap_trimming_done_by_another_process(two_caches):
    a, b = two_caches
    a.append("s", *({"role": "user", "content": f"m{n}"} for n in range(6)))
    assert _texts(b, "s") == [f"m{n}" for n in range(6)]  # B caches six
    a.append("s", *({"role": "user", "content": f"m{n}"} for n in range(6, 9)))
    assert _texts(b, "s") == [f"m{n}" for n in range(9)]  # the tail B did not hold
    a.append("s", *({"role": "user", "content": f"m{n}"} for n in range(9, 14)))  # the cap drops m0..m3
    assert _texts(b, "s") == [f"m{n}" for n in range(4, 14)] == _texts(a, "s")
    a.append("s", *({"role": "user", "content": f"m{n}"} for n in range(14, 30)))  # past all B holds
    assert _texts(b, "s") == [f"m{n}" for n in range(20, 30)]


def test_a_cache_never_shows_a_session_another_process_cleared_or_replaced(two_caches):
    a, b = two_caches
    a.append("s", {"role": "user", "content": "old one"}, {"role": "user", "content": "old two"})
    assert _texts(b, "s") == ["old one", "old two"]
    a.clear_history("s")
    a.append("s", {"role": "user", "content": "new one"}, {"role": "user", "content": "new two"})
    assert _texts(b, "s") == ["new one", "new two"]  # same length as B's cache, another epoch
    a.import_session("s", messages=[{"role": "user", "content": "imported"},
                                    {"role": "user", "content": "imported two"}])
    assert _texts(b, "s") == ["imported", "imported two"]
    b.append("s", {"role": "user", "content": "after the import, via B"})
    assert _texts(a, "s") == ["imported", "imported two", "after the import, via B"]
