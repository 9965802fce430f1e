"""One column of a provider comparison, as shown, stored with the session and exported."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ColumnResult:
    index: int
    label: str
    provider: str
    model: str
    text: str = ""
    done: bool = False
    ttft: float | None = None
    total: float | None = None
    usage: dict[str, Any] | None = None
    estimate: int | None = None
    exact: int | None = None
    sent_messages: int = 0
    dropped_messages: int = 0
    cost: float | None = None
    cost_source: str = ""  # "price of gpt-4o", "priced as gpt-4o-mini", "no price for X", "no usage reported"
    count_label: str = ""  # where ``exact`` comes from: lib.tokens.counting.count_label, "approximate" for Claude/llama
    sent_items: int | None = None  # messages or input items in the request body, as the API counts them
    sent_note: str = ""  # e.g. "5 input items + top-level instructions field" (plain text: a table cell)
    request: dict[str, Any] | None = None
    response_id: str | None = None
    server_context: list[dict[str, Any]] = field(default_factory=list)  # compaction items, applied context edits
    report: list[str] = field(default_factory=list)  # the model's report of what it could see (offline)
    error: str | None = None
    error_type: str | None = None
