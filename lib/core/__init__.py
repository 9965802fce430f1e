"""The bottom layer: errors, secrets, configuration, content safety, prices and the data model
(messages, ``Usage``, ``TurnRecord``, ``ReplyMeta``, the comparison record). It imports nothing else from lib.
"""

from __future__ import annotations

from lib.core.comparison import ColumnResult
from lib.core.config import (
    BOUNDS,
    MAX_CONCURRENT_TURNS,
    MAX_REPLY_CHARS,
    PROJECT_ROOT,
    STREAM_TIME_LIMIT,
    ConfigError,
    Settings,
)
from lib.core.content import (
    PREVIEW_CHARS,
    content_text,
    has_bidi_controls,
    markdown_literal,
    preview,
    reveal_bidi,
    safe_markdown,
    safe_title,
    signed,
)
from lib.core.errors import HistoryLabError
from lib.core.fields import as_float, as_int, as_mapping, as_str, report_lines_of
from lib.core.messages import WIRE_KEYS, Message, wire_message, wire_payload
from lib.core.pricing import (
    DEFAULT_PRICES,
    DEFAULT_REFERENCE_MODEL,
    NO_PRICE,
    OFFLINE_PREFIX,
    PRICES_CHECKED,
    Price,
    cost_text,
    current_first,
    default_table,
    estimate_cost,
    find_price,
    lifecycle,
    model_label,
    price_rows,
    priced_as,
    prices_from_rows,
    shutdown_date,
    storage_cost,
    ttl_text,
    usage_cost,
)
from lib.core.ranges import IdRange, id_positions, id_ranges, resolve_ranges
from lib.core.records import (
    DEMO_PROVIDER,
    ReplyMeta,
    TurnRecord,
    UsageRecord,
    import_turn,
    priced,
    read_turns,
    system_hash,
    system_meta_field,
    usage_from_json,
    usage_to_json,
)
from lib.core.secrets import mask_secrets, mask_then_cut, register_secrets
from lib.core.session_settings import META_SETTINGS, SessionSettings
from lib.core.urls import redact_url, url_passwords
from lib.core.usage import CacheTTL, Usage
from lib.core.usage_view import (
    NOT_REPORTED,
    NOT_REPORTED_HINT,
    CacheVerdict,
    cache_verdict,
    input_breakdown,
    reported_verdict,
    usage_caption,
)

__all__ = [
    "BOUNDS", "DEFAULT_PRICES", "DEMO_PROVIDER", "MAX_CONCURRENT_TURNS", "MAX_REPLY_CHARS", "NO_PRICE",
    "OFFLINE_PREFIX", "PREVIEW_CHARS", "PROJECT_ROOT", "STREAM_TIME_LIMIT", "WIRE_KEYS", "CacheTTL",
    "ColumnResult", "ConfigError", "HistoryLabError", "IdRange", "Message", "Price", "ReplyMeta", "Settings",
    "TurnRecord", "Usage", "UsageRecord", "as_float", "as_int", "as_mapping", "as_str", "content_text",
    "cost_text", "default_table", "estimate_cost", "find_price", "has_bidi_controls", "id_positions",
    "id_ranges", "import_turn", "markdown_literal", "mask_secrets", "mask_then_cut", "preview", "price_rows",
    "priced", "prices_from_rows", "read_turns", "redact_url", "register_secrets", "resolve_ranges",
    "reveal_bidi", "safe_markdown", "safe_title", "system_hash", "system_meta_field", "url_passwords",
    "usage_cost", "usage_from_json", "usage_to_json", "wire_message", "wire_payload", "storage_cost",
    "ttl_text", "report_lines_of", "DEFAULT_REFERENCE_MODEL", "NOT_REPORTED", "NOT_REPORTED_HINT",
    "PRICES_CHECKED", "CacheVerdict", "cache_verdict", "current_first", "input_breakdown", "lifecycle",
    "model_label", "priced_as", "reported_verdict", "shutdown_date", "usage_caption", "META_SETTINGS",
    "SessionSettings", "signed",
]
