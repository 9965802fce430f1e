"""Token counts: the bundled encodings, the seed's chars/4 estimate beside exact tiktoken counts, the one
function that labels a count (exact, approximate, estimate), and the token view.
"""

from __future__ import annotations

from lib.tokens.counting import (
    ESTIMATE_LABEL,
    REPLY_PRIMING,
    choose_encoding,
    clear_count_cache,
    content_text,
    count_chat_tokens,
    count_label,
    count_text,
    count_tokens,
    count_tool_tokens,
    encoding_for,
    estimate_chat_tokens,
    estimate_tokens,
    message_breakdown,
    message_tokens,
    reply_priming,
)
from lib.tokens.encodings import EncodingUnavailable, load_encoding, preload
from lib.tokens.view import (
    COMPARED_ENCODINGS,
    DEFAULT_SEGMENT_LIMIT,
    PRESETS,
    TEXT_KINDS,
    error_pct,
    message_kind,
    segments_html,
    summarize,
    text_kind,
    token_segments,
    token_view,
)

__all__ = [
    "COMPARED_ENCODINGS", "DEFAULT_SEGMENT_LIMIT", "ESTIMATE_LABEL", "PRESETS", "REPLY_PRIMING", "TEXT_KINDS",
    "EncodingUnavailable", "choose_encoding", "clear_count_cache", "content_text", "count_chat_tokens",
    "count_label", "count_text", "count_tokens", "count_tool_tokens", "encoding_for", "error_pct",
    "estimate_chat_tokens", "estimate_tokens", "load_encoding", "message_breakdown", "message_kind",
    "message_tokens", "preload", "reply_priming", "segments_html", "summarize", "text_kind", "token_segments",
    "token_view"
]
