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
"""

from __future__ import annotations

import json
import re

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


def safe_title(text: object, *, limit: int = 80) -> str:
    """A one-line label (session titles, table cells): bidi revealed, whitespace collapsed, cut to ``limit``."""
    line = _WHITESPACE.sub(" ", reveal_bidi(content_text(text))).strip()
    return line if len(line) <= limit else line[: max(limit - 1, 0)].rstrip() + "…"


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
