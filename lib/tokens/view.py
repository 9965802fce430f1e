"""The token view: a text split into its tokens, the counts beside it, and what kind of text it is.

Tokens are bytes, not characters. ``token_segments`` keeps each token's raw bytes (from
``decode_single_token_bytes``), so the segments always join back to the exact UTF-8 of the text, and shows a
token that holds only part of a character honestly: its bytes as ``\\xe6\\xbc`` escapes, with the character it
belongs to in ``chars`` ("漢"). That is the lesson the view teaches: chars/4 assumes ~4 characters per token,
while one CJK character or emoji can take two or three tokens.

Counts stay exact over the whole text; only the shaded view is capped (``DEFAULT_SEGMENT_LIMIT``), so a
20,000-character message stays responsive.
"""

from __future__ import annotations

import html
import json
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from lib.tokens.counting import content_text, count_text, estimate_tokens
from lib.tokens.encodings import EncodingUnavailable, load_encoding

DEFAULT_SEGMENT_LIMIT = 2_000
COMPARED_ENCODINGS = ("cl100k_base", "o200k_base", "tekken_240718")
# Mistral numbers its 1,000 control tokens first, so a Tekken token's id is its rank plus 1,000.
ID_OFFSETS = {"tekken_240718": 1_000}
# Pastel backgrounds cycled token by token, as tiktokenizer does; dark text reads on all of them.
PALETTE = ("#fde68a", "#bbf7d0", "#bfdbfe", "#fbcfe8", "#ddd6fe", "#fed7aa")

TextKind = Literal["prose", "CJK", "code", "JSON / tool call", "emoji"]
TEXT_KINDS: tuple[TextKind, ...] = ("prose", "CJK", "code", "JSON / tool call", "emoji")

PRESETS: dict[str, str] = {
    "English prose": "The quick brown fox jumps over the lazy dog. Tokenizers split common English words into "
                     "single tokens, so four characters per token is a fair guess for text like this.",
    "Chinese": "人工智能正在改变我们的生活方式。每个汉字通常需要一到两个词元，所以按四个字符估算会严重低估。",
    "Japanese": "東京は日本の首都です。ひらがなとカタカナと漢字が混ざった文章は、"
                "英語よりずっと多くのトークンを使います。",
    "Python code": 'def trim_history(messages, budget):\n    """Drop the oldest turns until it fits."""\n'
                   "    while total(messages) > budget and len(messages) > 4:\n"
                   "        del messages[1]\n    return messages\n",
    "JSON": json.dumps({"tool_calls": [{"id": "call_8xJ2", "type": "function", "function": {
        "name": "get_weather", "arguments": json.dumps({"city": "Zürich", "unit": "celsius"})}}]}, indent=2),
    "emoji": "🎉🚀 Launch day! 👩‍💻👨‍💻 The team shipped it 🙌🔥✨ See you at the party 🥳🍕🎶",
}


@dataclass(frozen=True)
class Segment:
    """One token: its id, its raw bytes, how to show it, and the characters it is part of."""

    index: int
    token: int
    raw: bytes
    text: str  # the bytes as UTF-8; a partial character shows as \xNN escapes
    chars: str  # the characters this token's bytes belong to (for a partial token, the whole character)
    partial: bool  # the bytes are not complete UTF-8 on their own


@dataclass(frozen=True)
class TokenView:
    """The shaded view of one text: the first ``len(segments)`` tokens of ``total`` (exact, uncapped)."""

    encoding: str
    segments: list[Segment]
    total: int

    @property
    def truncated(self) -> bool:
        return len(self.segments) < self.total


@dataclass(frozen=True)
class TextSummary:
    """The figures shown beside the token view."""

    chars: int
    counts: dict[str, int | None]  # encoding name -> exact count (None when that encoding cannot load)
    estimate: int  # chars/4, rounded up: the seed's rule
    reference: str  # the encoding the error and chars per token are measured against
    error_pct: float | None  # (estimate - exact) / exact, in %: negative when chars/4 undercounts
    chars_per_token: float | None


def error_pct(estimate: int, exact: int | None) -> float | None:
    """How far chars/4 is from the exact count, in % of the exact count (None when there is nothing to compare)."""
    if not exact:
        return None
    return round((estimate - exact) / exact * 100, 1)


def token_segments(text: str, encoding_name: str, *, limit: int | None = None) -> list[Segment]:
    """The text's tokens in ``encoding_name`` (encode_ordinary, as every count here), the first ``limit`` only."""
    encoding = load_encoding(encoding_name)
    tokens = encoding.encode_ordinary(text)
    return _segments(text, tokens[:limit] if limit is not None else tokens, encoding.decode_single_token_bytes,
                     ID_OFFSETS.get(encoding_name, 0))


def token_view(text: str, encoding_name: str, *, limit: int = DEFAULT_SEGMENT_LIMIT) -> TokenView:
    encoding = load_encoding(encoding_name)
    tokens = encoding.encode_ordinary(text)
    return TokenView(encoding_name, _segments(text, tokens[:limit], encoding.decode_single_token_bytes,
                                              ID_OFFSETS.get(encoding_name, 0)), len(tokens))


def _segments(text: str, tokens: list[int], decode: Callable[[int], bytes], offset: int = 0) -> list[Segment]:
    # Walk the characters alongside the tokens' byte ranges, so the cost follows the part of the text shown
    # (the cap), not the whole text. ``char`` is the character holding the current token's first byte.
    segments = []
    end = 0  # byte offset just after the current token
    char, char_start = 0, 0  # a character index and the byte offset where that character starts
    for index, token in enumerate(tokens):
        raw = decode(token)
        end += len(raw)
        first = char
        while char < len(text) and char_start + _utf8_len(text[char]) <= end:
            char_start += _utf8_len(text[char])
            char += 1
        last = char if char < len(text) and char_start < end else char - 1  # a character cut at ``end``
        try:
            shown, partial = raw.decode("utf-8"), False
        except UnicodeDecodeError:
            shown, partial = raw.decode("utf-8", errors="backslashreplace"), True
        segments.append(Segment(index, token + offset, raw, shown, text[first:last + 1], partial))
    return segments


def _utf8_len(ch: str) -> int:
    code = ord(ch)
    return 1 if code < 0x80 else 2 if code < 0x800 else 3 if code < 0x10000 else 4


def summarize(text: str, *, reference: str = "o200k_base") -> TextSummary:
    """cl100k_base, o200k_base and Mistral's tekken_240718 counts, the chars/4 estimate and its error,
    characters per token."""
    counts: dict[str, int | None] = {}
    for name in dict.fromkeys([*COMPARED_ENCODINGS, reference]):
        try:
            counts[name] = count_text(text, name)
        except EncodingUnavailable:
            counts[name] = None
    estimate = estimate_tokens(text)
    exact = counts[reference]
    return TextSummary(len(text), counts, estimate, reference, error_pct(estimate, exact),
                       round(len(text) / exact, 2) if exact else None)


def segments_html(view: TokenView) -> str:
    """The shaded view as HTML (escaped): one span per token, colours cycling, partial bytes outlined."""
    spans = []
    for segment in view.segments:
        colour = PALETTE[segment.index % len(PALETTE)]
        title = f"token {segment.index + 1}: id {segment.token}, {len(segment.raw)} bytes"
        style = f"background:{colour};border-radius:3px;padding:0 1px;"
        if segment.partial:
            title += f", part of “{segment.chars}”"
            style += "outline:1px dashed #b91c1c;font-family:monospace;font-size:0.85em;"
        shown = html.escape(segment.text).replace("\n", "↵\n")
        spans.append(f'<span title="{html.escape(title)}" style="{style}">{shown}</span>')
    more = (f'<span style="color:#6b7280"> … {view.total - len(view.segments):,} more tokens not shaded</span>'
            if view.truncated else "")
    return f'<div style="white-space:pre-wrap;line-height:1.9;color:#111827">{"".join(spans)}{more}</div>'


def text_kind(text: str) -> TextKind:
    """A rough class for the per-kind error chart: JSON, CJK, emoji, code, or prose."""
    stripped = text.strip()
    if stripped[:1] in "{[" and _is_json(stripped):
        return "JSON / tool call"
    # ASCII holds no CJK and no emoji (no ASCII character is category So): skip the per-character scan,
    # which dominated the inspector's cold build on long sessions.
    visible = [] if stripped.isascii() else [c for c in stripped if not c.isspace()]
    if visible and sum(_is_cjk(c) for c in visible) / len(visible) >= 0.3:
        return "CJK"
    if visible and sum(_is_emoji(c) for c in visible) / len(visible) >= 0.2:
        return "emoji"
    if _looks_like_code(stripped):
        return "code"
    return "prose"


def message_kind(message: Mapping[str, Any]) -> TextKind:
    """A stored message's kind: tool calls and tool results are JSON whatever their text."""
    if message.get("role") == "tool" or message.get("tool_calls"):
        return "JSON / tool call"
    return text_kind(content_text(message.get("content") or ""))


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _is_cjk(ch: str) -> bool:
    code = ord(ch)
    return (0x3040 <= code <= 0x30FF or 0x3400 <= code <= 0x9FFF or 0xAC00 <= code <= 0xD7AF
            or 0xF900 <= code <= 0xFAFF or 0xFF00 <= code <= 0xFFEF or 0x3000 <= code <= 0x303F
            or 0x20000 <= code <= 0x2FFFF)


def _is_emoji(ch: str) -> bool:
    code = ord(ch)
    # Pictographs and symbols, plus the joiners and selectors that build emoji sequences.
    return (0x1F000 <= code <= 0x1FAFF or 0x2600 <= code <= 0x27BF or code in (0x200D, 0xFE0F)
            or unicodedata.category(ch) == "So")


_CODE_STARTS = ("def ", "class ", "import ", "from ", "return ", "function ", "const ", "let ", "var ", "if (",
                "for (", "while (", "#include", "public ", "fn ", "SELECT ", "print(", "console.", "}")
_CODE_ENDS = (";", "{", "}", "):", "=>")


def _looks_like_code(text: str) -> bool:
    if "```" in text:
        return True
    lines = [line for line in text.splitlines() if line.strip()]
    codeish = sum(1 for line in lines
                  if line.lstrip().startswith(_CODE_STARTS) or line.rstrip().endswith(_CODE_ENDS)
                  or (line.startswith(("    ", "\t")) and any(c in line for c in "=()[]{}")))
    # One code-like line in prose ("Call f(x);") is not code; most lines being code-like is.
    return len(lines) >= 2 and codeish / len(lines) >= 0.5 or len(lines) == 1 and codeish == 1 and \
        sum(c in "=()[]{};<>_" for c in text) / len(text) >= 0.08
