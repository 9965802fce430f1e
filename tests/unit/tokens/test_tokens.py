"""Token counts: the seed's estimate, exact tiktoken counts, and the cookbook's chat format."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import tiktoken.load

from lib.core import HistoryLabError
from lib.tokens import (
    EncodingUnavailable,
    choose_encoding,
    count_chat_tokens,
    count_tokens,
    encoding_for,
    encodings,
    estimate_tokens,
    message_breakdown,
)
from lib.tokens import counting as tokens

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
    ("llama3.2", "o200k_base", True), ("offline-echo", "o200k_base", True), ("offline-teacher", "o200k_base", True),
    ("qwen2.5:7b", "o200k_base", True), ("mistral", "o200k_base", True), ("gemma3", "o200k_base", True),
    ("claude-opus-4-1", "o200k_base", True), ("o3", "o200k_base", False), ("gpt-4o-mini", "o200k_base", False),
    ("gpt-oss-20b", "o200k_harmony", False),
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
                         timeout=120, cwd=str(Path(__file__).resolve().parents[3]))
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


@pytest.mark.parametrize(("args", "label"), [
    (("tiktoken", {"encoding": "o200k_base"}), "exact (tiktoken, o200k_base)"),
    (("tiktoken", {"model": "gpt-4"}), "exact (tiktoken, cl100k_base)"),
    (("tiktoken", {"model": "gpt-5"}), "exact (tiktoken, o200k_base)"),
    (("tiktoken", {"model": "claude-sonnet-4-5"}), "approximate (o200k_base stands in for claude-sonnet-4-5)"),
    (("tiktoken", {"model": "qwen2.5", "encoding": "o200k_base"}), "approximate (o200k_base stands in for qwen2.5)"),
    (("endpoint", {}), "exact (provider count endpoint)"),
    (("provider", {"model": "gpt-4o"}), "provider-reported (after the call)"),
    (("estimate", {}), "estimate (chars/4)"),
    (("simulated", {}), "simulated"),
])
def test_count_labels_are_the_agreed_words(args, label):
    source, options = args
    assert tokens.count_label(source, **options) == label


def test_an_unknown_count_source_is_refused():
    with pytest.raises(ValueError, match="Unknown count source 'guess'"):
        tokens.count_label("guess")  # type: ignore[arg-type]


def test_encoding_choice_label_is_the_count_label():
    assert choose_encoding("gpt-4o").label == "exact (tiktoken, o200k_base)"
    assert choose_encoding("mistral").label == "approximate (o200k_base stands in for mistral)"


# --- bundled encodings ---------------------------------------------------------------------------------

@pytest.fixture
def fresh_encodings():
    """Forget loaded encodings before and after, so a test's broken set-up never leaks into the next."""
    encodings.reset_encodings()
    tokens.clear_count_cache()
    yield
    encodings.reset_encodings()
    tokens.clear_count_cache()


@pytest.fixture
def no_network(monkeypatch, tmp_path):
    """An empty TIKTOKEN_CACHE_DIR, and any attempt to download fails the test loudly."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"tried to download: {args!r}")

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(tiktoken.load, "read_file", refuse)
    monkeypatch.setattr(encodings.tiktoken, "get_encoding", refuse)
    return tmp_path


# OpenAI's encodings: tiktoken's own table pins them. (Mistral's tekken is checked against mistral-common's ids
# in test_tekken.py.)
@pytest.mark.parametrize("name", sorted(n for n in encodings.BUNDLED if not n.startswith("tekken")))
def test_bundled_specs_match_tiktoken_ext(name, monkeypatch):
    # Build tiktoken's own constructor with the download replaced, and compare what it would pass to Encoding.
    import tiktoken_ext.openai_public as public

    calls = []
    monkeypatch.setattr(public, "load_tiktoken_bpe", lambda url, expected_hash: calls.append(expected_hash) or {})
    official = public.ENCODING_CONSTRUCTORS[name]()
    spec = encodings.BUNDLED[name]
    assert (spec.pat_str, spec.special_tokens, spec.sha256) == (official["pat_str"], official["special_tokens"],
                                                                 calls[0])
    assert hashlib.sha256(spec.path.read_bytes()).hexdigest() == spec.sha256


@pytest.mark.usefixtures("fresh_encodings")
def test_counts_are_exact_with_an_empty_cache_and_no_network(no_network):
    assert count_chat_tokens(COOKBOOK, "gpt-4") == 129 and count_chat_tokens(COOKBOOK, "gpt-4o") == 124
    assert count_tokens("こんにちは、世界", "gpt-4o") == 3 and count_tokens("こんにちは、世界", "gpt-4") == 5
    assert list(no_network.iterdir()) == []  # read in place, never copied into the cache


@pytest.mark.usefixtures("fresh_encodings")
def test_a_corrupted_bundled_file_is_refused(monkeypatch, tmp_path):
    good = encodings.BUNDLED["o200k_base"].path.read_bytes()
    (tmp_path / "o200k_base.tiktoken").write_bytes(good.replace(b" 1000\n", b" 1001\n", 1))
    monkeypatch.setattr(encodings, "ENCODINGS_DIR", tmp_path)
    with pytest.raises(EncodingUnavailable, match="fails its SHA-256 check") as caught:
        count_tokens("hello", "gpt-4o")
    assert isinstance(caught.value, HistoryLabError)
    assert "ships with History Lab" in caught.value.user_message
    # The app degrades to the estimate rather than crashing.
    assert message_breakdown([{"role": "user", "content": "hello"}], "gpt-4o")[0].exact is None


@pytest.mark.usefixtures("fresh_encodings")
def test_an_encoding_loads_once_and_counting_starts_no_thread(monkeypatch):
    first = tokens.load_encoding("o200k_base")
    assert tokens.load_encoding("o200k_base") is first

    def no_threads(*args, **kwargs):
        raise AssertionError("a count started a thread")

    monkeypatch.setattr(encodings.threading, "Thread", no_threads)
    assert count_tokens("a fresh text, never counted before 1234", "gpt-4o") > 0


def test_nothing_in_the_code_points_outside_the_repository():
    root = Path(__file__).resolve().parents[3]
    tracked = subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True, check=True).stdout
    code = [p for p in tracked.split() if p.endswith((".py", ".toml", ".cfg", ".yml", ".yaml")) or p == ".ci/run"]
    this_file = Path(__file__).relative_to(root).as_posix()
    outside = "/".join(("..", "shared"))  # spelt apart so this file does not name the folder it forbids
    offenders = [p for p in code if p != this_file and outside in (root / p).read_text(errors="replace")]
    assert offenders == []


@pytest.mark.usefixtures("fresh_encodings")
def test_preload_loads_the_bundled_encodings_in_the_background():
    assert encodings.loaded_encoding("o200k_base") is None
    encodings.preload().join(timeout=60)
    assert encodings.loaded_encoding("o200k_base") is not None
    assert encodings.loaded_encoding("cl100k_base") is not None


@pytest.mark.usefixtures("fresh_encodings")
def test_preload_remembers_a_failure_for_the_page_to_report(monkeypatch, tmp_path):
    monkeypatch.setattr(encodings, "ENCODINGS_DIR", tmp_path)  # no files here
    encodings.preload(("o200k_base",)).join(timeout=60)  # never raises in its thread
    assert encodings.loaded_encoding("o200k_base") is None
    with pytest.raises(EncodingUnavailable):
        count_tokens("hello", "gpt-4o")


def test_the_server_settings_skip_streamlits_full_collection_after_every_run():
    # Streamlit reads .streamlit/config.toml from the working directory `streamlit run` starts in.
    import tomllib

    config = tomllib.loads((Path(__file__).resolve().parents[3] / ".streamlit" / "config.toml").read_text())
    assert config["runner"]["postScriptGC"] is False
