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

from lib.core import Message, anthropic_tools
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
THREADS_BETA = "message-threads-2026-08-12"  # anthropic 2.13, types/anthropic_beta_param.py
THINKING_TURNS_KEPT = 1  # clear_thinking_20251015 keeps the thinking of the newest assistant turn only
THINKING_MODELS = ("claude-sonnet-5", "claude-opus-5", "claude-haiku-5", "claude-fable-5", "claude-mythos-5")
# Models from the installed SDK (anthropic/types/model_param.py, checked 2026-12-06), current ones first. All
# but claude-haiku-5-5 (two price bands by prompt length) have a row in lib/core/pricing.py; claude-sonnet-4-5 was
# retired on 2026-11-30 and is not offered (old sessions keep its price).
ANTHROPIC_MODELS = ("claude-sonnet-5", "claude-sonnet-5-5", "claude-opus-5-5", "claude-fable-5", "claude-opus-5",
                    "claude-opus-4-8", "claude-opus-4-7", "claude-sonnet-4-6", "claude-haiku-4-5",
                    "claude-haiku-5-5")


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
        if options.tools:
            # The prompt is tools, then system, then messages: the tools are the very front of the cached prefix.
            tools = anthropic_tools(options.tools)
            if cache and not system:  # a breakpoint where the stable front ends (with a system prompt: there)
                tools[-1]["cache_control"] = cache
            request.update(tools=tools, tool_choice={"type": "none"})
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
        comparison = options.cache_comparison_id or options.previous_response_id
        if self._caching(options) and comparison:
            # Ask why the cache missed, compared with the previous reply (shown as "why the cache missed").
            request["diagnostics"] = {"previous_message_id": comparison}
        if options.compaction_threshold:
            request["context_management"] = context_edits(options.compaction_threshold,
                                                          clear_thinking=thinks_by_default(model))
        return request

    def betas(self, request: dict[str, Any]) -> list[str]:
        """The beta features a request uses (sent as the anthropic-beta header)."""
        return list(CONTEXT_BETAS) if "context_management" in request else []

    def open_stream(self, request: dict[str, Any]) -> Iterable[Any]:
        betas = self.betas(request)
        stream: Iterable[Any]
        if betas:  # the SDK sends ``betas`` as the anthropic-beta header
            stream = self.client.beta.messages.create(**request, betas=betas)
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


def context_edits(threshold: int, *, clear_thinking: bool = False) -> dict[str, Any]:
    """Beta context management once the input passes ``threshold`` tokens: first clear old tool results
    (keeping the newest few), then compact what is still too long into a summary block.

    ``clear_thinking``: also drop the thinking blocks of older assistant turns (``clear_thinking_20251015``),
    for models that think by default. It goes first: Anthropic's context-editing guide requires the thinking
    edit to precede the others when they are combined.
    """
    trigger = {"type": "input_tokens", "value": threshold}
    edits: list[dict[str, Any]] = [
        {"type": "clear_tool_uses_20250919", "trigger": trigger,
         "keep": {"type": "tool_uses", "value": TOOL_USES_KEPT}},
        {"type": "compact_20260112", "trigger": trigger},
    ]
    if clear_thinking:
        edits.insert(0, {"type": "clear_thinking_20251015", "keep": {"type": "thinking_turns",
                                                                      "value": THINKING_TURNS_KEPT}})
    return {"edits": edits}


def thinks_by_default(model: str) -> bool:
    """Claude 5 models think adaptively by default (the model overviews, checked 2026-12-06), so their old
    thinking blocks are worth clearing; earlier models think only when asked, which this adapter never does."""
    return model.startswith(THINKING_MODELS)


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


class AnthropicThreadsProvider(AnthropicProvider):
    """Messages with the history kept on the server in a Thread (beta ``message-threads-2026-08-12``).

    The first request asks the server to hold the conversation (``thread={"type": "create"}``); each later one
    continues from the previous reply's id and sends only the new user message. As with OpenAI's
    ``previous_response_id``, the request is small but the server re-reads, and bills, the whole thread.
    The system prompt is a top-level field, so it goes with every request.
    """

    name = "anthropic-threads"
    label = "Anthropic (Messages, server-side thread)"
    capabilities = Capabilities(server_side_history=True, prompt_caching=True, server_compaction=True,
                                needs_key=True, server_state_modes=("thread",))

    def build_request(self, messages: Sequence[Message], *, model: str, max_tokens: int,
                      options: ProviderOptions) -> dict[str, Any]:
        previous = options.previous_response_id
        if previous:  # the thread holds everything before the newest user message
            newest = next((m for m in reversed(messages) if m.get("role") == "user"), None)
            system = [m for m in messages if m.get("role") in ("system", "developer")]
            messages = [*system, *([newest] if newest else [])]
        request = super().build_request(messages, model=model, max_tokens=max_tokens, options=options)
        request["thread"] = {"type": "continue", "previous_message_id": previous} if previous else {"type": "create"}
        return request

    def betas(self, request: dict[str, Any]) -> list[str]:
        return [*super().betas(request), THREADS_BETA]
