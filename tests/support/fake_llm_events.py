"""The event streams and JSON answers of tests/support/fake_llm.py, one function per API.

Token figures are simple functions of the request (10 per message or input item, 5 for a system prompt or
instructions, 4 per tool definition), so tests can state exactly what the parsing must produce.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.support.fake_llm import FakeLLM

Events = list[tuple[str | None, Any]]
CACHED = 3  # cached / cache-read tokens every usage report claims
CHAT_CACHE_WRITE = 2  # Chat Completions: prompt_tokens_details.cache_write_tokens
ANTHROPIC_WRITES = {"ephemeral_5m_input_tokens": 5, "ephemeral_1h_input_tokens": 2}
PER_ITEM, PER_SYSTEM, OUTPUT = 10, 5, 5
PER_TOOL = 4  # each tool definition in ``tools``: part of the prompt, on every request
COMPACTED_CONTEXT = 20  # what a compacted server-side context holds afterwards
CACHE_MISS = {"cache_miss_reason": {"type": "messages_changed", "cache_missed_input_tokens": 42}}
# gpt-5.6+: tokens written with prompt_cache_options, reported by TTL; the diagnostics a comparison asks for.
OPENAI_WRITES = 4
OPENAI_MISS = {"type": "cache_miss", "reason": "input_changed", "cache_missed_tokens": 42,
               "comparison_reusable_tokens": 60}
OMIT = "<omit>"  # a usage override with this value leaves the field out (a local server that never sends it)


def _tools(body: dict[str, Any]) -> int:
    return PER_TOOL * len(body.get("tools") or [])


def _words(count: int) -> list[str]:
    text = f"Fake reply to {count} messages."
    return [w + " " for w in text.split()[:-1]] + [text.split()[-1]]


# -- Chat Completions -----------------------------------------------------------------------------------


def chat_events(body: dict[str, Any], *, refusal: str | None, diagnostics: dict[str, Any] | None,
                usage: dict[str, Any] | None = None) -> Events:
    """``usage``: fields that replace the reported ones, sent as they are (any type, any size)."""
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": body.get("model")}
    count = len(body.get("messages") or [])
    if refusal:
        deltas = [{"role": "assistant", "content": None, "refusal": refusal}]
    else:
        deltas = [{"role": "assistant", "content": word} for word in _words(count)]
    events: Events = [(None, {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
                      for delta in deltas]
    prompt = PER_ITEM * count + _tools(body)
    reported = {"prompt_tokens": prompt, "completion_tokens": OUTPUT, "total_tokens": prompt + OUTPUT,
                "prompt_tokens_details": {"cached_tokens": CACHED, "cache_write_tokens": CHAT_CACHE_WRITE},
                **(usage or {})}
    reported = {k: v for k, v in reported.items() if v != OMIT}
    last: dict[str, Any] = {**base, "choices": [], "usage": reported}
    if diagnostics:
        last["prompt_cache_diagnostics"] = diagnostics
    events += [(None, last), (None, "[DONE]")]
    return events


def chat_completion(body: dict[str, Any]) -> dict[str, Any]:
    """A non-streaming Chat Completions answer (``stream`` absent or false): the same reply and usage as the
    stream, in one JSON object. The seed's route (bench/seed) calls the model this way."""
    count = len(body.get("messages") or [])
    prompt = PER_ITEM * count
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": body.get("model"),
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                         "message": {"role": "assistant", "content": "".join(_words(count)), "refusal": None}}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": OUTPUT, "total_tokens": prompt + OUTPUT,
                      "prompt_tokens_details": {"cached_tokens": CACHED, "cache_write_tokens": CHAT_CACHE_WRITE}}}


# -- Responses ------------------------------------------------------------------------------------------


def _conversation_id(body: dict[str, Any]) -> str | None:
    conversation = body.get("conversation")
    if isinstance(conversation, dict):
        return str(conversation.get("id"))
    return conversation if isinstance(conversation, str) else None


def _held(body: dict[str, Any], contexts: dict[str, int]) -> int | tuple[int, str, str | None]:
    """Tokens the server already holds for this request, or the error for an unknown id."""
    previous, conversation = body.get("previous_response_id"), _conversation_id(body)
    if previous and previous not in contexts:
        return 400, f"Previous response with id '{previous}' not found.", "previous_response_not_found"
    if conversation and conversation not in contexts:
        return 404, f"Conversation with id '{conversation}' not found.", None
    return contexts.get(previous or conversation or "", 0)


def _prompt(body: dict[str, Any], held: int) -> int:
    # Instructions are not carried over by the chain, so they are counted on every request.
    return (held + PER_ITEM * len(body.get("input") or []) + (PER_SYSTEM if body.get("instructions") else 0)
            + _tools(body))


def responses_count(body: dict[str, Any], contexts: dict[str, int]) -> dict[str, Any]:
    held = _held(body, contexts)
    return {"object": "response.input_tokens", "input_tokens": _prompt(body, held if isinstance(held, int) else 0)}


def _threshold(body: dict[str, Any]) -> int | None:
    for entry in body.get("context_management") or ():
        if entry.get("type") == "compaction":
            return int(entry.get("compact_threshold") or 0)
    return None


def responses_events(body: dict[str, Any], fake: FakeLLM, *, scripted: str | None,
                     failure: dict[str, Any]) -> Events | tuple[int, str, str | None]:
    held = _held(body, fake.contexts)
    if isinstance(held, tuple):
        return held
    response_id, conversation = fake.new_id("resp"), _conversation_id(body)
    response: dict[str, Any] = {"id": response_id, "object": "response", "created_at": 1, "model": body.get("model"),
                                "status": "in_progress", "output": [], "truncation": body.get("truncation")}
    if conversation:
        response["conversation"] = {"id": conversation}
    events: Events = [("response.created", {"type": "response.created", "sequence_number": 0, "response": response})]
    if scripted == "response.failed":
        error = {"code": failure.get("code", "server_error"), "message": failure.get("message", "The model failed")}
        events.append(("response.failed", {"type": "response.failed", "sequence_number": 1,
                                           "response": {**response, "status": "failed", "error": error}}))
        return events
    kind, pieces = ("refusal", [failure.get("message", "I can't help with that.")]) if scripted == "refusal" \
        else ("output_text", _words(len(body.get("input") or [])))
    for n, piece in enumerate(pieces, start=1):
        events.append((f"response.{kind}.delta", {
            "type": f"response.{kind}.delta", "sequence_number": n, "item_id": "msg_1", "output_index": 0,
            "content_index": 0, "delta": piece, "logprobs": []}))
    prompt = _prompt(body, held)
    output, context = [], prompt + OUTPUT
    threshold = _threshold(body)
    if threshold is not None and prompt > threshold:
        output.append({"id": fake.new_id("cmp"), "type": "compaction", "encrypted_content": "gAAAA-summary"})
        context = COMPACTED_CONTEXT + OUTPUT
    fake.contexts[response_id] = context
    if conversation:
        fake.contexts[conversation] = context
    options = body.get("prompt_cache_options") or {}
    details: dict[str, Any] = {"cached_tokens": CACHED, "cache_write_tokens": 0}
    if options:  # gpt-5.6+: writes are billed, and reported by the TTL the request asked for
        twelve = options.get("ttl") == "12h"
        details.update(cache_write_tokens=OPENAI_WRITES, cache_write_tokens_details={
            "ttl_30m_tokens": 0 if twelve else OPENAI_WRITES, "ttl_12h_tokens": OPENAI_WRITES if twelve else 0})
    usage = {"input_tokens": prompt, "output_tokens": OUTPUT, "total_tokens": prompt + OUTPUT,
             "input_tokens_details": details, "output_tokens_details": {"reasoning_tokens": 0}}
    done = {**response, "status": "completed", "usage": usage, "output": output}
    if options:
        done["prompt_cache_options"] = {"mode": options.get("mode", "implicit"), "ttl": options.get("ttl", "30m"),
                                        "comparison_response_id": options.get("comparison_response_id")}
    if fake.cache_diagnostics:
        done["prompt_cache_diagnostics"] = fake.cache_diagnostics
    elif options.get("comparison_response_id"):
        done["prompt_cache_diagnostics"] = OPENAI_MISS
    events.append(("response.completed", {"type": "response.completed", "sequence_number": 99, "response": done}))
    return events


# -- Anthropic Messages ---------------------------------------------------------------------------------


def anthropic_count(body: dict[str, Any]) -> dict[str, Any]:
    return {"input_tokens": PER_ITEM * len(body.get("messages") or []) + (PER_SYSTEM if body.get("system") else 0)
            + _tools(body)}


def _compaction(body: dict[str, Any], input_tokens: int) -> bool:
    edits = (body.get("context_management") or {}).get("edits") or ()
    return any(e.get("type") == "compact_20260112" and input_tokens >= e["trigger"]["value"] for e in edits)


def anthropic_events(body: dict[str, Any], fake: FakeLLM, *, refusal: str | None) -> Events | tuple[int, str, str]:
    """Messages. A ``thread`` (beta message-threads-2026-08-12) holds the context under each response id:
    continuing one bills the held context as input, though only the new messages were sent."""
    count = len(body.get("messages") or [])
    thread = body.get("thread") or {}
    held = 0
    if thread.get("type") == "continue":
        previous = thread.get("previous_message_id")
        if previous not in fake.contexts:
            return 404, f"Thread message '{previous}' not found.", "not_found_error"
        held = fake.contexts[previous]
    input_tokens = held + PER_ITEM * count + _tools(body)
    usage = {"input_tokens": input_tokens, "output_tokens": 1, "cache_creation_input_tokens": 7,
             "cache_read_input_tokens": CACHED, "cache_creation": ANTHROPIC_WRITES}
    message_id = fake.new_id("msg")
    if thread:
        fake.contexts[message_id] = input_tokens + OUTPUT
    message = {"id": message_id, "type": "message", "role": "assistant", "content": [], "model": body.get("model"),
               "stop_reason": None, "stop_sequence": None, "usage": usage}
    if body.get("diagnostics"):
        message["diagnostics"] = CACHE_MISS
    events: Events = [("message_start", {"type": "message_start", "message": message})]
    compacted = _compaction(body, input_tokens)
    if compacted:
        events += _block(0, {"type": "compaction", "content": None},
                         [{"type": "compaction_delta", "content": f"Summary of {count - 1} earlier messages."}])
    if not refusal:
        events += _block(int(compacted), {"type": "text", "text": ""},
                         [{"type": "text_delta", "text": word} for word in _words(count)])
    delta: dict[str, Any] = {"stop_reason": "refusal" if refusal else "end_turn", "stop_sequence": None}
    if refusal:
        delta["stop_details"] = {"type": "refusal", "category": "cyber", "explanation": refusal}
    end: dict[str, Any] = {"type": "message_delta", "delta": delta, "usage": {"output_tokens": OUTPUT}}
    if compacted:
        end["context_management"] = {"applied_edits": [
            {"type": "clear_tool_uses_20250919", "cleared_tool_uses": 0, "cleared_input_tokens": 0}]}
    events += [("message_delta", end), ("message_stop", {"type": "message_stop"})]
    return events


def _block(index: int, start: dict[str, Any], deltas: list[dict[str, Any]]) -> Events:
    events: Events = [("content_block_start", {"type": "content_block_start", "index": index,
                                               "content_block": start})]
    events += [("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d}) for d in deltas]
    events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    return events


# -- Gemini (generativelanguage v1beta) -------------------------------------------------------------------

GEMINI_THOUGHTS = 4  # thoughtsTokenCount every Gemini reply claims (billed as output)


def gemini_prompt(body: dict[str, Any], caches: dict[str, int]) -> tuple[int, int]:
    """(promptTokenCount, cachedContentTokenCount): a named cache's tokens are part of the prompt and all
    cached; without one, CACHED tokens stand for an implicit cache hit."""
    own = PER_ITEM * len(body.get("contents") or []) + (PER_SYSTEM if body.get("systemInstruction") else 0) \
        + _gemini_tools(body)
    held = caches.get(str(body.get("cachedContent")), 0)
    return own + held, held if body.get("cachedContent") else CACHED


def _gemini_tools(body: dict[str, Any]) -> int:
    declared = [d for t in body.get("tools") or [] for d in t.get("functionDeclarations") or []]
    return PER_TOOL * len(declared)


def gemini_count(body: dict[str, Any]) -> dict[str, Any]:
    # A generateContentRequest, when present, is what is counted (the API ignores contents then).
    request = body.get("generateContentRequest") or body
    return {"totalTokens": gemini_prompt(request, {})[0]}


def gemini_cache(body: dict[str, Any], name: str) -> tuple[dict[str, Any], int]:
    tokens = PER_ITEM * len(body.get("contents") or []) + (PER_SYSTEM if body.get("systemInstruction") else 0) \
        + _gemini_tools(body)
    cache = {"name": name, "model": body.get("model"), "displayName": body.get("displayName"),
             "createTime": "2026-12-06T10:00:00Z", "updateTime": "2026-12-06T10:00:00Z",
             "expireTime": "2026-12-06T11:00:00Z", "usageMetadata": {"totalTokenCount": tokens}}
    return cache, tokens


def gemini_events(body: dict[str, Any], caches: dict[str, int], *, model: str, refusal: bool,
                  usage: dict[str, Any] | None = None) -> Events:
    prompt, cached = gemini_prompt(body, caches)
    base = {"modelVersion": model, "responseId": "gemini_resp_1"}
    reported = {"promptTokenCount": prompt, "cachedContentTokenCount": cached, "candidatesTokenCount": OUTPUT,
                "thoughtsTokenCount": GEMINI_THOUGHTS, "totalTokenCount": prompt + OUTPUT + GEMINI_THOUGHTS,
                **(usage or {})}
    if refusal:
        return [(None, {**base, "candidates": [{"finishReason": "SAFETY", "index": 0}], "usageMetadata": reported})]
    thought = {"text": "Thinking about the history.", "thought": True}
    words = _words(len(body.get("contents") or []))
    events: Events = [(None, {**base, "candidates": [{"content": {"role": "model", "parts": [thought]}, "index": 0}]})]
    for n, word in enumerate(words):
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": word}]}, "index": 0}
        chunk = {**base, "candidates": [candidate]}
        if n == len(words) - 1:
            candidate["finishReason"] = "STOP"
            chunk["usageMetadata"] = reported
        events.append((None, chunk))
    return events
