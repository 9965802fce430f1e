"""Anthropic Messages API: system at the top level, strictly alternating roles, optional prompt caching.

With prompt caching on, a cache breakpoint sits on the system prompt and on the last message of the stable
history (the one before the new user message), so the next turn reads the history from the cache instead
of paying for it in full.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

import anthropic

from lib.core import Message
from lib.providers.base import Capabilities, ProviderOptions, Reply, ServerContext, split_system
from lib.providers.errors import Refused
from lib.providers.remote import RemoteProvider
from lib.providers.usage import anthropic_usage, merge_anthropic_usage
from lib.tokens import content_text

ANTHROPIC_URL = "https://api.anthropic.com"
# Anthropic rejects a conversation that starts with the assistant; this stands in for a trimmed question.
LEADING_USER = "(earlier messages were trimmed)"
# Beta context management in the installed SDK (anthropic/types/anthropic_beta_param.py): clearing old tool
# results ("context-management-2025-06-27") and compacting old turns into a summary ("compact-2026-01-12").
CONTEXT_BETAS = ["context-management-2025-06-27", "compact-2026-01-12"]
TOOL_USES_KEPT = 3
# Current models from the installed SDK (anthropic/types/model_param.py, 2026-11-25), none of them in
# anthropic/_data/deprecated_models.py. The first four have a confirmed price in lib/core/pricing.py; the 5-5
# models do not yet, and say "no price" until one is added to the table.
ANTHROPIC_MODELS = ("claude-sonnet-5", "claude-opus-4-8", "claude-sonnet-4-6", "claude-haiku-4-5",
                    "claude-sonnet-5-5", "claude-haiku-5-5", "claude-opus-5-5")


class AnthropicProvider(RemoteProvider):
    name = "anthropic"
    label = "Anthropic (Messages)"
    default_model = "claude-sonnet-5"
    models = ANTHROPIC_MODELS
    env_var = "ANTHROPIC_API_KEY"
    capabilities = Capabilities(prompt_caching=True, server_compaction=True, count_endpoint=True, needs_key=True)
    default_base_url = ANTHROPIC_URL

    def __init__(self, *, prompt_caching: bool = False, **options: Any) -> None:
        super().__init__(**options)
        # A default for calls that pass no ProviderOptions (the compare page's per-column switch).
        self.prompt_caching = prompt_caching

    def _new_client(self) -> anthropic.Anthropic:
        return anthropic.Anthropic(api_key=self._api_key, base_url=self.base_url, timeout=self.timeout,
                                   max_retries=self.max_retries)

    def _payload(self, messages: Sequence[Message], *, model: str, options: ProviderOptions) -> dict[str, Any]:
        """The fields a message and a token count share: model, messages, system, cache breakpoints."""
        system, conversation = split_system(messages)
        cache = {"type": "ephemeral", "ttl": options.cache_ttl} if self._caching(options) else None
        request: dict[str, Any] = {"model": model, "messages": anthropic_messages(conversation, cache=cache)}
        if system:
            request["system"] = [{"type": "text", "text": system, "cache_control": cache}] if cache else system
        return request

    def _caching(self, options: ProviderOptions) -> bool:
        return options.prompt_caching or self.prompt_caching

    def effective_options(self, options: ProviderOptions) -> ProviderOptions:
        return replace(options, prompt_caching=True) if self._caching(options) else options

    def build_request(self, messages: Sequence[Message], *, model: str, max_tokens: int,
                      options: ProviderOptions) -> dict[str, Any]:
        request = self._payload(messages, model=model, options=options)
        request = {"model": model, "max_tokens": max_tokens, **request, "stream": True}
        if self._caching(options) and options.previous_response_id:
            # Ask why the cache missed, compared with the previous turn's message.
            request["diagnostics"] = {"previous_message_id": options.previous_response_id}
        if options.compaction_threshold:
            request["context_management"] = context_edits(options.compaction_threshold)
        return request

    def open_stream(self, request: dict[str, Any]) -> Iterable[Any]:
        stream: Iterable[Any]
        if "context_management" in request:  # a beta: the SDK sends ``betas`` as the anthropic-beta header
            stream = self.client.beta.messages.create(**request, betas=CONTEXT_BETAS)
        else:
            stream = self.client.messages.create(**request)
        return stream

    def handle_event(self, event: Any, reply: Reply) -> str:
        kind = getattr(event, "type", "")
        if kind == "content_block_delta" and getattr(event.delta, "type", "") == "text_delta":
            return str(event.delta.text)
        if kind in ("content_block_start", "content_block_delta"):
            _read_compaction(event, reply)
        fields = reply.state.setdefault("usage", {})
        if kind == "message_start":
            reply.response_id = event.message.id
            merge_anthropic_usage(fields, event.message.usage)
            reply.state["diagnostics"] = getattr(event.message, "diagnostics", None)
        elif kind == "message_delta":
            merge_anthropic_usage(fields, event.usage)
            reply.stop_reason = event.delta.stop_reason or reply.stop_reason
            details = getattr(event.delta, "stop_details", None)
            if reply.stop_reason == "refusal":
                reply.refusal = getattr(details, "explanation", None) or getattr(details, "category", None) or ""
            applied = getattr(getattr(event, "context_management", None), "applied_edits", None) or ()
            reply.server_context += [ServerContext(edit.type, edit.model_dump(exclude={"type"})) for edit in applied]
        reply.usage = anthropic_usage(fields, reply.state.get("diagnostics"))
        return ""

    def finish(self, reply: Reply) -> None:
        if reply.stop_reason == "refusal":
            reason = reply.refusal or "no reason given"
            raise Refused(f"{self.label} declined to answer ({reason}). Rephrase the request.",
                          provider=self.label, reason=reason)

    def count_tokens(self, messages: Sequence[Message], model: str, *,
                     options: ProviderOptions | None = None) -> int:
        """The exact input tokens of this request, from ``messages.count_tokens`` (a network call)."""
        request = self._payload(messages, model=model, options=options or ProviderOptions())
        return int(self.call(lambda: self.client.messages.count_tokens(**request)).input_tokens)


def context_edits(threshold: int) -> dict[str, Any]:
    """Beta context management once the input passes ``threshold`` tokens: first clear old tool results
    (keeping the newest few), then compact what is still too long into a summary block."""
    trigger = {"type": "input_tokens", "value": threshold}
    return {"edits": [
        {"type": "clear_tool_uses_20250919", "trigger": trigger,
         "keep": {"type": "tool_uses", "value": TOOL_USES_KEPT}},
        {"type": "compact_20260112", "trigger": trigger},
    ]}


def _read_compaction(event: Any, reply: Reply) -> None:
    """Collect a compaction block's summary (it arrives as a block start plus ``compaction_delta`` events)."""
    block: Any = getattr(event, "content_block", None) or getattr(event, "delta", None)
    kind = getattr(block, "type", "")
    if kind == "compaction":
        reply.server_context.append(ServerContext("compaction", {"content": block.content or ""}))
    elif kind == "compaction_delta" and reply.server_context and reply.server_context[-1].kind == "compaction":
        reply.server_context[-1].detail["content"] += block.content or ""


def anthropic_messages(conversation: Sequence[Message], *,
                       cache: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Alternating user/assistant messages, merged where roles repeat, starting with a user message."""
    merged: list[dict[str, Any]] = []
    for message in conversation:
        role = "assistant" if message.get("role") == "assistant" else "user"
        text = message_text(message)
        if merged and merged[-1]["role"] == role:
            merged[-1]["content"] += "\n\n" + text
        else:
            merged.append({"role": role, "content": text})
    if merged and merged[0]["role"] != "user":
        merged.insert(0, {"role": "user", "content": LEADING_USER})
    if cache and len(merged) >= 2:
        # The breakpoint goes on the newest history message before the new question: everything up to it
        # is re-sent unchanged next turn, so next turn reads it from the cache.
        target = merged[-2]
        target["content"] = [{"type": "text", "text": target["content"], "cache_control": cache}]
    return merged


def message_text(message: Message) -> str:
    """One message as text; tool calls and results become readable lines."""
    # Tool traffic becomes text: Anthropic's tool_use ids and OpenAI's differ, and the lesson is the history.
    text = content_text(message.get("content") or "")
    if message.get("role") == "tool":
        return f"[tool result {message.get('tool_call_id', '')}] {text}".strip()
    if message.get("tool_calls"):
        return f"{text}\n[tool calls] {content_text(message['tool_calls'])}".strip()
    return text
