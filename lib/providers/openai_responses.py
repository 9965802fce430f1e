"""OpenAI Responses API: history kept on the server (the successor of the Assistants API, sunset 2026-08-26).

With ``previous_response_id`` or a Conversations API ``conversation`` the server already holds the earlier
turns, so only the new user message is sent. The request is small, but every earlier input token is still
billed as input. ``truncation="auto"`` lets the server drop old items when the window fills, and
``context_management=[{"type": "compaction", "compact_threshold": N}]`` makes it compact them instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from openai import Stream
from openai.types.responses import Response, ResponseStreamEvent

from lib.core import Message, mask_then_cut, responses_tools
from lib.providers.base import Capabilities, ProviderOptions, Reply, ServerContext, split_system
from lib.providers.errors import Refused, ResponseFailed
from lib.providers.openai_chat import OpenAIChatProvider, has_cache_options, post_stream
from lib.providers.usage import openai_usage
from lib.tokens import content_text


class OpenAIResponsesProvider(OpenAIChatProvider):
    name = "openai-responses"
    label = "OpenAI (Responses, server-side history)"
    capabilities = Capabilities(server_side_history=True, server_compaction=True, count_endpoint=True,
                                needs_key=True, server_state_modes=("previous_response", "conversation"))

    def build_request(self, messages: Sequence[Message], *, model: str, max_tokens: int,
                      options: ProviderOptions) -> dict[str, Any]:
        request = self._input_fields(messages, model=model, options=options)
        request.update({"max_output_tokens": max_tokens, "stream": True})
        if has_cache_options(model):
            cache: dict[str, Any] = {"mode": "implicit", "ttl": "12h" if options.cache_ttl == "12h" else "30m"}
            # Ask why the cache missed against the previous response (the chain's, or the one named).
            comparison = options.cache_comparison_id or options.previous_response_id
            if comparison:
                cache["comparison_response_id"] = comparison
            request["prompt_cache_options"] = cache
            if options.prompt_cache_key:
                request["prompt_cache_key"] = options.prompt_cache_key
        if options.compaction_threshold:
            request["context_management"] = [{"type": "compaction",
                                               "compact_threshold": options.compaction_threshold}]
        return request

    def _input_fields(self, messages: Sequence[Message], *, model: str, options: ProviderOptions) -> dict[str, Any]:
        """The fields a response and a token count share: model, input, instructions and server state."""
        instructions, conversation = split_system(messages)
        chained = bool(options.previous_response_id or options.conversation_id)
        if chained:  # the server holds everything before the newest user message
            newest_user = next((m for m in reversed(conversation) if m.get("role") == "user"), None)
            conversation = [newest_user] if newest_user else []
        request: dict[str, Any] = {"model": model, "input": [_input_item(m) for m in conversation]}
        if instructions:
            # Instructions are not carried over by previous_response_id, so they go on every call.
            request["instructions"] = instructions
        if options.conversation_id:
            request["conversation"] = options.conversation_id
        elif options.previous_response_id:
            # The API refuses both at once; a conversation already orders its own responses.
            request["previous_response_id"] = options.previous_response_id
        if options.truncation:
            request["truncation"] = options.truncation
        if options.tools:  # re-sent on every call: previous_response_id does not carry them over
            request.update(tools=responses_tools(options.tools), tool_choice="none")
        return request

    def open_stream(self, request: dict[str, Any]) -> Iterable[Any]:
        # The body we built, sent as is (see post_stream: the typed create() re-walks every input item).
        return post_stream(self.client, "/responses", request, cast_to=Response,
                           stream_cls=Stream[ResponseStreamEvent])

    def handle_event(self, event: Any, reply: Reply) -> str:
        kind = getattr(event, "type", "")
        if kind == "response.output_text.delta":
            return str(event.delta)
        if kind == "response.refusal.delta":
            reply.refusal = (reply.refusal or "") + event.delta
        elif kind in ("response.created", "response.completed", "response.incomplete"):
            self._read_response(event.response, reply)
        elif kind == "response.failed":
            self._read_response(event.response, reply)
            error = event.response.error
            reason = getattr(error, "message", None) or "no reason given"
            code = getattr(error, "code", None)
            raise ResponseFailed(f"{self.label} failed while answering ({code or 'no code'}: {reason}). "
                                 "Try again; if it repeats, start a new chain or shorten the conversation.",
                                 provider=self.label, reason=reason, code=code)
        elif kind == "error":
            raise ResponseFailed(f"{self.label} reported an error mid-stream ({event.code or 'no code'}: "
                                 f"{event.message}). Try again.", provider=self.label, reason=event.message,
                                 code=event.code)
        return ""

    def _read_response(self, response: Any, reply: Reply) -> None:
        reply.response_id = response.id
        conversation = getattr(response, "conversation", None)
        if conversation is not None:
            reply.conversation_id = conversation.id
        if response.usage is not None:
            reply.usage = openai_usage(response.usage, getattr(response, "prompt_cache_diagnostics", None),
                                       responses=True)
        details = getattr(response, "incomplete_details", None)
        if details is not None and getattr(details, "reason", None):
            reply.stop_reason = details.reason
        for item in getattr(response, "output", None) or ():
            if getattr(item, "type", "") == "compaction" and not any(
                    c.detail.get("id") == item.id for c in reply.server_context):
                # The encrypted summary stays opaque; what it replaced is billed in input_tokens.
                reply.server_context.append(ServerContext("compaction", {
                    "id": item.id, "encrypted_bytes": len(getattr(item, "encrypted_content", "") or "")}))

    def finish(self, reply: Reply) -> None:
        if reply.refusal and not reply.text:
            raise Refused(f"{self.label} refused to answer: {mask_then_cut(reply.refusal, 300)}", provider=self.label,
                          reason=reply.refusal)

    def count_tokens(self, messages: Sequence[Message], model: str, *,
                     options: ProviderOptions | None = None) -> int:
        """The exact input tokens of this request, from ``responses.input_tokens.count`` (a network call)."""
        request = self._input_fields(messages, model=model, options=options or ProviderOptions())
        return int(self.call(lambda: self.client.responses.input_tokens.count(**request)).input_tokens)

    def create_conversation(self, messages: Sequence[Message] = ()) -> str:
        """A new Conversations API object, holding ``messages`` (none: empty); its id goes in
        ``ProviderOptions.conversation_id``. Seeding it lets a session that began elsewhere continue on it."""
        items = [_input_item(m) for m in messages]
        if not items:
            return str(self.call(lambda: self.client.conversations.create()).id)
        return str(self.call(lambda: self.client.conversations.create(items=items)).id)


def _input_item(message: Message) -> dict[str, Any]:
    # Tool traffic is shown as text: the Responses API has its own item types for it.
    role = message.get("role")
    if role == "tool":
        return {"role": "user", "content": f"[tool result] {content_text(message.get('content'))}"}
    content = message.get("content")
    text = content if isinstance(content, str) else content_text(content)
    if message.get("tool_calls"):
        text = f"{text}\n[tool calls] {content_text(message['tool_calls'])}".strip()
    return {"role": role, "content": text}
