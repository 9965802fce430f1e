"""OpenAI Responses API with server-side history (the successor of the Assistants API).

With ``previous_response_id`` the server already holds the conversation, so only the new user message
is sent. The request is small, but every earlier input token is still billed as input.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from lib.providers.base import Message, Reply, Usage, split_system
from lib.providers.openai_chat import OpenAIChatProvider
from lib.tokens import content_text


class OpenAIResponsesProvider(OpenAIChatProvider):
    name = "openai-responses"
    label = "OpenAI (Responses, server-side history)"
    default_model = "gpt-4o-mini"
    server_side_history = True

    def stream(
        self,
        messages: Sequence[Message],
        *,
        model: str,
        max_tokens: int = 1024,
        previous_response_id: str | None = None,
        dropped: int = 0,
    ) -> Reply:
        client = self.client
        instructions, conversation = split_system(messages)
        if previous_response_id:
            newest_user = next((m for m in reversed(conversation) if m.get("role") == "user"), None)
            conversation = [newest_user] if newest_user else []
        request: dict[str, Any] = {
            "model": model,
            "input": [_input_item(m) for m in conversation],
            "max_output_tokens": max_tokens,
            "stream": True,
        }
        if instructions:
            # Instructions are not carried over by previous_response_id, so they go on every call.
            request["instructions"] = instructions
        if previous_response_id:
            request["previous_response_id"] = previous_response_id

        def produce(reply: Reply) -> Iterator[str]:
            for event in client.responses.create(**request):
                kind = getattr(event, "type", "")
                if kind == "response.created":
                    reply.response_id = event.response.id
                elif kind == "response.output_text.delta":
                    yield event.delta
                elif kind == "response.completed":
                    reply.response_id = event.response.id
                    usage = event.response.usage
                    if usage is not None:
                        details = usage.input_tokens_details
                        reply.usage = Usage(
                            input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
                            cache_read_tokens=(details.cached_tokens or 0) if details else 0,
                            cache_write_tokens=(getattr(details, "cache_write_tokens", 0) or 0) if details else 0,
                            cache_in_input=True,
                        )
                elif kind in ("response.failed", "error"):
                    message = getattr(getattr(getattr(event, "response", None), "error", None), "message", None)
                    raise ValueError(message or getattr(event, "message", None) or "the response failed")

        return Reply(request, produce, self._translate)


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
