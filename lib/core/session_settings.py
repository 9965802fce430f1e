"""How a session was made: the settings its turns ran with, stored in the session meta on every turn.

    settings = SessionSettings(strategy="turns", budget=200, reserve=0, provider="offline",
                               model="offline-teacher", system_prompt="You are a helpful assistant.")
    store.set_meta(sid, **settings.meta_fields())   # lib.chat.start_turn does this with the user message
    SessionSettings.from_meta(store.get_meta(sid))  # -> the settings of the newest turn, or None

A reload, a shared ``?session=`` link and the HTTP API read them back, so a conversation is never shown
under settings that did not produce it. One JSON field (``settings``) in the meta hash; read without
ever raising: a missing, malformed or oddly typed value reads as "not stored" (None), so the caller
falls back to its defaults.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from lib.core.fields import as_int, as_str

META_SETTINGS = "settings"


@dataclass(frozen=True)
class SessionSettings:
    """The settings one turn ran with (the newest turn's are the session's)."""

    strategy: str
    budget: int
    reserve: int
    provider: str
    model: str
    system_prompt: str

    def meta_fields(self) -> dict[str, str]:
        """The session-meta field to write (the store keeps a hash of strings)."""
        return {META_SETTINGS: json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)}

    def to_api(self) -> dict[str, Any]:
        """The names POST /api/chat takes, so a client can send them back as they are."""
        return {"strategy": self.strategy, "budget": self.budget, "reserve": self.reserve,
                "provider": self.provider, "model": self.model, "system": self.system_prompt}

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any] | None) -> SessionSettings | None:
        """The stored settings, or None when there are none or they cannot be read whole."""
        raw = (meta or {}).get(META_SETTINGS)
        if not isinstance(raw, str):
            return None
        try:
            data = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(data, Mapping):
            return None
        text = {name: as_str(data.get(name)) for name in ("strategy", "provider", "model", "system_prompt")}
        budget, reserve = as_int(data.get("budget")), as_int(data.get("reserve"))
        if budget is None or reserve is None or budget < 1 or reserve < 0 or any(v is None for v in text.values()):
            return None
        return cls(budget=budget, reserve=reserve, **{k: str(v) for k, v in text.items()})

    def changes_from(self, other: SessionSettings) -> list[str]:
        """The names of the settings that differ from ``other`` ("budget", "system prompt", ...)."""
        return [f.name.replace("_", " ") for f in fields(self) if getattr(self, f.name) != getattr(other, f.name)]
