"""Token counts: the seed's estimate, exact tiktoken counts, and the cookbook's chat format."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from lib import tokens
from lib.tokens import (
    EncodingUnavailable,
    choose_encoding,
    count_chat_tokens,
    count_tokens,
    encoding_for,
    estimate_tokens,
    message_breakdown,
)
from tests.conftest import require

# The OpenAI cookbook's example for num_tokens_from_messages.
COOKBOOK = [
    {"role": "system", "content": "You are a helpful, pattern-following assistant that translates corporate "
     "jargon into plain English."},
    {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
    {"role": "system", "name": "example_assistant", "content": "Things working well together will increase revenue."},
    {"role": "system", "name": "example_user", "content": "Let's circle back when we have more bandwidth to touch "
     "base on opportunities for increased leverage."},
    {"role": "system", "name": "example_assistant", "content": "Let's talk later when we're less busy about how to "
     "do better."},
    {"role": "user", "content": "This late pivot means we don't have time to boil the ocean for the client "
     "deliverable."},
]


@pytest.fixture(autouse=True)
def _encodings_present():
    require(tokens.encoding_available("gpt-4o") and tokens.encoding_available("gpt-4"),
            "tiktoken encodings not loadable; set TIKTOKEN_CACHE_DIR")


def test_estimate_is_the_seeds_ceil_chars_over_four():
    assert estimate_tokens("") == 0
    assert estimate_tokens("a") == 1
    assert estimate_tokens("abcd") == 1
    assert estimate_tokens("abcde") == 2
    # Non-string content is measured as its JSON, like the seed's JSON.stringify.
    parts = [{"type": "text", "text": "hi"}]
    assert estimate_tokens(parts) == -(-len('[{"type": "text", "text": "hi"}]') // 4)


@pytest.mark.parametrize(("model", "expected"), [("gpt-4", 129), ("gpt-3.5-turbo", 129), ("gpt-4o", 124),
                                                 ("gpt-4o-mini", 124), ("gpt-4.1", 124), ("gpt-5", 124)])
def test_cookbook_example(model, expected):
    assert count_chat_tokens(COOKBOOK, model) == expected


@pytest.mark.parametrize(("model", "name", "approximate"), [
    ("gpt-4o", "o200k_base", False), ("gpt-4.1-mini", "o200k_base", False), ("gpt-5", "o200k_base", False),
    ("o3-mini", "o200k_base", False), ("o1", "o200k_base", False), ("gpt-4", "cl100k_base", False),
    ("gpt-3.5-turbo", "cl100k_base", False), ("claude-sonnet-4-5", "o200k_base", True),
    ("llama3.2", "o200k_base", True), ("offline-echo", "o200k_base", True),
])
def test_encoding_choice(model, name, approximate):
    choice = choose_encoding(model)
    assert (choice.name, choice.approximate) == (name, approximate)
    assert encoding_for(model).name == name
    assert ("approximate" in choice.label) is approximate


def test_special_tokens_in_chat_text_are_ordinary_text():
    # encode() would raise on this; chat text is user data, not control tokens.
    assert count_tokens("<|endoftext|>", "gpt-4o") > 1


def test_ids_timestamps_and_meta_are_not_counted():
    bare = {"role": "user", "content": "hello there"}
    stored = {**bare, "id": "a" * 32, "ts": 1.7e9, "meta": {"usage": {"input_tokens": 5}}}
    assert count_chat_tokens([bare], "gpt-4o") == count_chat_tokens([stored], "gpt-4o")


def test_name_adds_one_plus_its_tokens():
    base = {"role": "user", "content": "hi"}
    named = {**base, "name": "alice"}
    assert count_chat_tokens([named], "gpt-4o") == count_chat_tokens([base], "gpt-4o") + 1 + count_tokens(
        "alice", "gpt-4o")


def test_tool_calls_and_list_content_are_counted_as_json():
    call = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Oslo"}'}}]}
    result = {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 3}'}
    parts = {"role": "user", "content": [{"type": "text", "text": "what is this?"}]}
    for message in (call, result, parts):
        assert count_chat_tokens([message], "gpt-4o") > 3 + 3
    assert count_chat_tokens([call], "gpt-4o") > count_chat_tokens([{"role": "assistant", "content": ""}], "gpt-4o")


@pytest.mark.parametrize(("text", "direction"), [
    ("東京は日本の首都であり、世界で最も人口の多い都市圏の一つです。" * 4, "under"),
    ("🎉🚀🔥😀" * 20, "under"),
    ("def f(x):\n" + "        return [i ** 2 for i in range(x) if i % 3 == 0]\n" * 10, "under"),
    ("    " * 200, "over"),  # runs of indentation merge into very few tokens
    ("internationalization responsibilities " * 10, "over"),  # long common words are single tokens
])
def test_chars_over_four_is_far_off_in_both_directions(text, direction):
    exact, estimate = count_tokens(text, "gpt-4o"), estimate_tokens(text)
    error = (estimate - exact) / exact
    if direction == "under":
        assert error < -0.25, (estimate, exact)
    else:
        assert error > 0.25, (estimate, exact)


def test_breakdown_has_estimate_and_exact_per_message():
    rows = message_breakdown(COOKBOOK, "gpt-4")
    assert [r.index for r in rows] == list(range(6))
    assert sum(r.exact for r in rows) + 3 == 129
    assert rows[0].estimate == estimate_tokens(COOKBOOK[0]["content"])
    assert rows[1].role == "system" and rows[1].chars == len(COOKBOOK[1]["content"])


OFFLINE_SCRIPT = textwrap.dedent("""
    import time
    from lib.tokens import EncodingUnavailable, count_tokens, message_breakdown
    start = time.monotonic()
    print("EXACT", count_tokens("hello world", "gpt-4o"), count_tokens("hello world", "gpt-4"))
    try:
        count_tokens("hello", "text-davinci-003")  # p50k_base: not bundled, needs a download
    except EncodingUnavailable as exc:
        print("ERR", exc)
    rows = message_breakdown([{"role": "user", "content": "hello"}], "text-davinci-003")
    print("ROWS", rows[0].estimate, rows[0].exact)
    print("TOOK", time.monotonic() - start)
""")


def test_fresh_process_with_no_network_counts_exactly_and_names_what_is_missing(tmp_path):
    # A fresh interpreter with an empty cache and no route to the download host: the bundled encodings
    # still count exactly, and an encoding that would need a download fails clearly and quickly.
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": str(tmp_path), "HTTPS_PROXY": "http://127.0.0.1:9",
           "https_proxy": "http://127.0.0.1:9", "NO_PROXY": "", "no_proxy": ""}
    out = subprocess.run([sys.executable, "-c", OFFLINE_SCRIPT], env=env, capture_output=True, text=True,
                         timeout=120, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert "EXACT 2 2" in out.stdout, out.stderr
    assert "ERR" in out.stdout, out.stderr
    assert "TIKTOKEN_CACHE_DIR" in out.stdout and str(tmp_path) in out.stdout
    assert "ROWS 2 None" in out.stdout
    assert float(out.stdout.split("TOOK")[1]) < 60
    assert list(tmp_path.iterdir()) == []  # the bundled files are read in place, never copied to a cache


def test_failure_is_remembered_until_reset(monkeypatch):
    calls = []

    def broken(name):
        calls.append(name)
        raise OSError("no network")

    monkeypatch.setattr(tokens.tiktoken, "get_encoding", broken)
    with pytest.raises(EncodingUnavailable):
        tokens.load_encoding("made_up_base")
    with pytest.raises(EncodingUnavailable):
        tokens.load_encoding("made_up_base")
    assert calls == ["made_up_base"]
    tokens.reset_encoding_failures()
    with pytest.raises(EncodingUnavailable):
        tokens.load_encoding("made_up_base")
    assert len(calls) == 2
