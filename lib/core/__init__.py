"""The bottom layer: errors, secrets, configuration, content safety, prices and the data model
(messages, ``Usage``, ``TurnRecord``, ``ReplyMeta``, the comparison record). It imports nothing else from lib.
"""

from __future__ import annotations

from lib.core.comparison import ColumnResult
from lib.core.config import BOUNDS, PROJECT_ROOT, ConfigError, Settings
from lib.core.content import (
    PREVIEW_CHARS,
    content_text,
    has_bidi_controls,
    markdown_literal,
    preview,
    reveal_bidi,
    safe_markdown,
    safe_title,
)
from lib.core.errors import HistoryLabError
from lib.core.fields import as_float, as_int, as_mapping, as_str
from lib.core.messages import WIRE_KEYS, Message
from lib.core.pricing import (
    DEFAULT_PRICES,
    NO_PRICE,
    OFFLINE_PREFIX,
    Price,
    cost_text,
    default_table,
    estimate_cost,
    find_price,
    price_rows,
    prices_from_rows,
    storage_cost,
    ttl_text,
    usage_cost,
)
from lib.core.records import (
    IdRange,
    ReplyMeta,
    TurnRecord,
    UsageRecord,
    id_positions,
    id_ranges,
    import_turn,
    priced,
    read_turns,
    rebuild_request,
    resolve_ranges,
    system_hash,
    system_meta_field,
    usage_from_json,
    usage_to_json,
    wire_payload,
)
from lib.core.secrets import mask_secrets, mask_then_cut, register_secrets
from lib.core.urls import redact_url, url_passwords
from lib.core.usage import CacheTTL, Usage

__all__ = [
    "BOUNDS", "DEFAULT_PRICES", "NO_PRICE", "OFFLINE_PREFIX", "PREVIEW_CHARS", "PROJECT_ROOT", "WIRE_KEYS",
    "CacheTTL", "ColumnResult", "ConfigError", "HistoryLabError", "IdRange", "Message", "Price", "ReplyMeta",
    "Settings", "TurnRecord", "Usage", "UsageRecord", "as_float", "as_int", "as_mapping", "as_str",
    "content_text", "cost_text", "default_table", "estimate_cost", "find_price", "has_bidi_controls",
    "id_positions", "id_ranges", "import_turn", "markdown_literal", "mask_secrets", "mask_then_cut", "preview",
    "price_rows", "priced", "prices_from_rows", "read_turns", "rebuild_request", "redact_url",
    "register_secrets", "resolve_ranges", "reveal_bidi", "safe_markdown", "safe_title", "system_hash",
    "system_meta_field", "url_passwords", "usage_cost", "usage_from_json", "usage_to_json", "wire_payload",
    "storage_cost",
    "ttl_text",
]
