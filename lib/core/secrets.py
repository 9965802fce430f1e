"""Mask every configured secret (API keys, the Redis password) in text that is shown, logged, stored or exported.

Secrets are registered once from Settings (and by anything else that holds one, such as a provider built
with an explicit key). ``mask_secrets`` replaces each registered value wherever it appears, whatever its
shape, plus anything that looks like a well-known key format, because a provider's error may quote a key
we were never told about (one typed into the sidebar, say).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable

MASK = "***"
# Shorter values would mask ordinary words; no real key or password we support is this short.
MIN_SECRET_CHARS = 6
# Well-known key shapes: OpenAI (sk-..., sk-proj-...), Anthropic (sk-ant-...), Google (AIza + 35 characters),
# bearer tokens in headers.
_KEY_SHAPES = re.compile(r"\b(sk-[A-Za-z0-9_\-]{8,}|AIza[A-Za-z0-9_\-]{35}|Bearer\s+[A-Za-z0-9._\-]{8,})")
# Every key shape starts with one of these (case-sensitive, as the pattern is). The pattern tries a match at
# every position of the text (about 8 ms for the 550 kB answer of a 2,000-message turn); a text holding none
# of them cannot match, and ``in`` finds that out at memchr speed.
_KEY_SHAPE_STARTS = ("sk-", "AIza", "Bearer")

_lock = threading.Lock()
_secrets: set[str] = set()


def register_secrets(values: Iterable[str | None]) -> None:
    """Remember secret values so every later ``mask_secrets`` call hides them."""
    with _lock:
        for value in values:
            if value and len(value) >= MIN_SECRET_CHARS:
                _secrets.add(value)


def mask_secrets(text: str) -> str:
    """``text`` with every registered secret and every key-shaped string replaced by ``***``."""
    if not text:
        return text
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)  # longest first: one key may contain another
    for secret in known:
        if secret in text:
            text = text.replace(secret, MASK)
    if not any(start in text for start in _KEY_SHAPE_STARTS):
        return text
    return _KEY_SHAPES.sub(MASK, text)


def mask_then_cut(text: str, limit: int) -> str:
    """``text`` masked, then cut to at most ``limit`` characters (the last one an ellipsis when cut).

    Masking must come first: a key cut in half matches neither its registered value nor a key shape,
    so a cut-then-masked message would show most of the key.
    """
    masked = mask_secrets(text)
    if len(masked) <= limit:
        return masked
    return masked[: max(limit - 1, 0)] + "…"
