"""The token view: segments that join back to the text, honest partial characters, capped view, kinds."""

from __future__ import annotations

import pytest

from lib.tokens import (
    DEFAULT_SEGMENT_LIMIT,
    PRESETS,
    count_tokens,
    error_pct,
    message_kind,
    segments_html,
    summarize,
    text_kind,
    token_segments,
    token_view,
)

CJK = "人工智能正在改变我们的生活方式。東京は日本の首都です。 漢字、饕餮、鬱"
CODE = 'def f(x: int) -> dict[str, int]:\n    return {"x": x ** 2}  # 二乗\n'
MODELS = {"cl100k_base": "gpt-4", "o200k_base": "gpt-4o"}


@pytest.mark.parametrize("encoding", sorted(MODELS))
@pytest.mark.parametrize("text", [CJK, CODE, PRESETS["emoji"], ""])
def test_segments_join_back_to_the_text_and_number_the_exact_count(text, encoding):
    segments = token_segments(text, encoding)
    assert b"".join(s.raw for s in segments) == text.encode("utf-8")
    assert len(segments) == count_tokens(text, MODELS[encoding])
    assert [s.index for s in segments] == list(range(len(segments)))
    for segment in segments:
        # A whole token shows its text as is; any token's whole characters sit inside what it claims.
        assert segment.partial or segment.text == segment.chars
        assert segment.raw.decode("utf-8", "ignore") in segment.chars


def test_a_character_split_over_two_tokens_is_shown_as_bytes():
    # o200k_base encodes " 漢" as b" \xe6\xbc" + b"\xa2": the character straddles two tokens.
    first, second = token_segments(" 漢", "o200k_base")
    assert (first.raw, second.raw) == (b" \xe6\xbc", b"\xa2")
    assert first.partial and second.partial
    assert first.text == " \\xe6\\xbc" and second.text == "\\xa2"
    assert first.chars == " 漢" and second.chars == "漢"
    whole = token_segments("hello", "o200k_base")[0]
    assert not whole.partial and whole.text == whole.chars == "hello"


def test_a_long_message_caps_the_view_but_not_the_counts():
    text = (PRESETS["Japanese"] + PRESETS["Python code"]) * 200
    assert len(text) > 20_000
    view = token_view(text, "o200k_base")
    assert len(view.segments) == DEFAULT_SEGMENT_LIMIT and view.truncated
    assert view.total == count_tokens(text, "gpt-4o")
    summary = summarize(text)
    assert summary.counts == {"cl100k_base": count_tokens(text, "gpt-4"), "o200k_base": view.total,
                              "tekken_240718": count_tokens(text, "mistral-nemo")}
    assert "more tokens not shaded" in segments_html(view)


def test_summary_figures():
    summary = summarize(PRESETS["Chinese"])
    exact = summary.counts["o200k_base"]
    assert summary.chars == len(PRESETS["Chinese"]) and summary.estimate == -(-summary.chars // 4)
    assert summary.error_pct == error_pct(summary.estimate, exact) and summary.error_pct < -40
    assert summary.chars_per_token == round(summary.chars / exact, 2)
    assert error_pct(5, 0) is None and error_pct(5, None) is None and error_pct(6, 4) == 50.0


def test_html_is_escaped_and_partial_tokens_are_marked():
    html = segments_html(token_view("<script>alert(1)</script> 漢", "o200k_base"))
    assert "<script" not in html and "&lt;script" in html  # the tag is split over tokens, each escaped
    assert "dashed" in html and "part of “漢”" in html


@pytest.mark.parametrize(("name", "kind"), [("English prose", "prose"), ("Chinese", "CJK"), ("Japanese", "CJK"),
                                            ("Python code", "code"), ("JSON", "JSON / tool call"),
                                            ("emoji", "emoji")])
def test_presets_cover_every_kind(name, kind):
    assert text_kind(PRESETS[name]) == kind


@pytest.mark.parametrize(("text", "kind"), [
    ("Call me back (after lunch) if you can.", "prose"),
    ("Here is the list:\nmilk\neggs", "prose"),
    ("```\nls -la\n```", "code"),
    ("const x = f(a);\nconsole.log(x);", "code"),
    ('{"a": 1}', "JSON / tool call"),
    ("{not json", "prose"),
    ("", "prose"),
    ("안녕하세요 여러분", "CJK"),
])
def test_text_kind_edges(text, kind):
    assert text_kind(text) == kind


def test_tool_messages_are_json_whatever_their_text():
    assert message_kind({"role": "tool", "content": "sunny"}) == "JSON / tool call"
    assert message_kind({"role": "assistant", "content": None, "tool_calls": [{"id": "c"}]}) == "JSON / tool call"
    assert message_kind({"role": "user", "content": "日本語で答えてください"}) == "CJK"
