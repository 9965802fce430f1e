"""The machine-readable description of /api (OpenAPI 3.1), served at GET /api/openapi.json.

Written by hand, next to the routes; tests/test_api.py compares its paths and methods with the mounted
routes, so the two cannot drift apart unnoticed.
"""

from __future__ import annotations

from typing import Any

from lib.api.bodies import ANSWER_PARTS, MAX_BUDGET, MAX_CONTENT_CHARS, MAX_MESSAGES, MODEL_MAX_CHARS, MODEL_PATTERN

_ERROR = {"$ref": "#/components/schemas/Error"}
_STRING_LIST = {"type": "array", "items": {"type": "string"}}
_MESSAGES = {"type": "array", "items": {"$ref": "#/components/schemas/Message"}, "maxItems": MAX_MESSAGES,
             "description": f"At most {MAX_MESSAGES:,} messages (more is a 413)."}
_BUDGET = {"type": "integer", "minimum": 1, "maximum": MAX_BUDGET,
           "description": "Context window for the trimmer (tokens)."}
_RESERVE = {"type": "integer", "minimum": 0, "maximum": MAX_BUDGET,
            "description": "Tokens kept free for the reply; smaller than the budget."}
_MODEL = {"type": "string", "maxLength": MODEL_MAX_CHARS, "pattern": f"^{MODEL_PATTERN.pattern}$"}
_SESSION_PARAM = {"name": "session_id", "in": "path", "required": True,
                  "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,128}$"}}

_STATUS_TEXT = {
    400: f"Invalid JSON, missing or empty message, a message, message content or system prompt over "
         f"{MAX_CONTENT_CHARS:,} characters, invalid session id, invalid model name, unknown provider or strategy, "
         f"a budget or reserve over {MAX_BUDGET:,} tokens, a budget too small for the newest message "
         "(with the numbers), or pinned/leftOut turns that do not exist or conflict.",
    401: "Missing or wrong bearer token (HISTORY_LAB_API_TOKEN is set on the server).",
    403: "Not a loopback client and HISTORY_LAB_API_TOKEN is not set on the server; or an Origin header that "
         "is not this app's own (a web page on another site or another port).",
    404: "Unknown or expired session.",
    413: f"The request body is over 1 MB, or 'messages' holds more than {MAX_MESSAGES:,} messages.",
    415: "The body was not sent with Content-Type: application/json.",
    502: "The provider failed, or its stream ran past STREAM_TIME_LIMIT (type stream_time_limit); the user message "
         "is stored and the turn is recorded as failed. error.request is the body that was sent.",
    503: "The session store is down; or (POST /api/chat, type server_busy, with Retry-After) MAX_CONCURRENT_TURNS "
         "turns are already running, and nothing was stored or sent.",
}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): {"description": _STATUS_TEXT[s], "content": {"application/json": {"schema": _ERROR}}}
            for s in (401, 403, 413, *statuses)}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


_CHAT_REQUEST = {
    "type": "object", "required": ["message"], "additionalProperties": False,
    "properties": {
        "sessionId": {"type": "string", "description": "Omit to start a new session. An existing session goes on "
                      "with the settings its last turn ran with (provider, model, system, strategy, budget, "
                      "reserve) for every one of them this body leaves out."},
        "message": {"type": "string", "minLength": 1, "maxLength": MAX_CONTENT_CHARS},
        "provider": {"type": "string", "description": "offline, openai, openai-responses, anthropic, "
                     "anthropic-threads, gemini, openai-compatible. Default: DEFAULT_PROVIDER, else offline. "
                     "Without `model`, the provider's default model."},
        "model": _MODEL,
        "system": {"type": "string", "maxLength": MAX_CONTENT_CHARS, "description": "System prompt."},
        "strategy": {"type": "string", "description": "A trimming strategy, e.g. turns, seed."},
        "budget": _BUDGET, "reserve": _RESERVE,
        "stream": {"type": "boolean", "description": "Answer with Server-Sent Events: 'delta' events "
                   "({text}), then 'done' (the ChatResponse) or 'error' (an Error plus status)."},
        "pinned": {"type": "array", "items": {"type": "integer", "minimum": 1}, "maxItems": 1000,
                   "description": "'You choose': turn numbers always sent, whatever the budget (whole-turn "
                   "strategies). Given, pinned and leftOut replace the session's stored choice; omitted, it "
                   "is kept."},
        "leftOut": {"type": "array", "items": {"type": "integer", "minimum": 1}, "maxItems": 1000,
                    "description": "'You choose': turn numbers never sent."},
        "tools": {"oneOf": [{"type": "boolean"}, {"type": "array", "maxItems": 32, "items": {"type": "object"}}],
                  "description": "Tool definitions sent with the request (tool_choice none): true for the "
                  "standard set (get_weather, search_web, calculator), or a list of {name, description, "
                  "parameters} (the Chat Completions shape is accepted too). Counted, cached, never trimmed."},
        "include": {"type": "array", "items": {"enum": list(ANSWER_PARTS)}, "description": "Optional parts of the "
                    "answer: \"request\" echoes the exact body sent to the provider (the whole history, so it "
                    "is left out unless asked; requestUrl fetches it later)."},
    },
}
_CHAT_RESPONSE = {
    "type": "object",
    "properties": {
        "sessionId": {"type": "string"}, "turn": {"type": "integer"}, "reply": {"type": "string"},
        "report": {**_STRING_LIST, "description": "The model's report of what it could see (the offline model); "
                   "kept in the reply's meta, never re-sent."},
        "usage": {"type": ["object", "null"], "properties": {
            "input_tokens": {"type": ["integer", "null"], "description": "The provider's own input figure: "
                             "OpenAI's includes cached tokens, Anthropic's excludes cache reads and writes "
                             "(cache_in_input says which). Read total_input_tokens instead."},
            "cache_in_input": {"type": "boolean"}, "output_tokens": {"type": ["integer", "null"]},
            "uncached_input_tokens": {"type": ["integer", "null"]},
            "cache_read_tokens": {"type": "integer"}, "cache_write_tokens": {"type": "integer"},
            "cache_write_ttl": {"type": "object", "description": "Cache writes by TTL: 5m/1h (Anthropic), "
                                "30m/12h (OpenAI gpt-5.6+)."},
            "total_input_tokens": {"type": ["integer", "null"],
                                   "description": "uncached + cache reads + cache writes, for every provider"},
            "prompt_total": {"type": ["integer", "null"], "description": "The same as total_input_tokens."},
            "cache_reported": {"type": "boolean", "description": "Absent when true; false when the server sent "
                               "no cache figure (a local server): the cache figures are then unknown, not 0."},
            "source": {"type": "string", "description": "provider-reported, or simulated (offline model)"}}},
        "sent": _STRING_LIST, "dropped": _STRING_LIST,
        "tokens": {"type": "object", "properties": {"estimate": {"type": "integer"},
                                                    "exact": {"type": ["integer", "null"]},
                                                    "encoding": {"type": "string"},
                                                    "tools": {"type": ["integer", "null"]}}},
        "cost": {"type": ["number", "null"]}, "provider": {"type": "string"}, "model": {"type": "string"},
        "problems": _STRING_LIST,
        "truncated": {"type": ["object", "null"], "description": "Set when the reply reached MAX_REPLY_CHARS: "
                      "the reply is cut there and stored so, and the rest was never received.",
                      "properties": {"atChars": {"type": "integer"}, "note": {"type": "string"}}},
        "request": {"type": ["object", "null"], "description": "Only with \"include\": [\"request\"]: the exact "
                    "body sent to the provider (never a key); null when no request was made."},
        "requestUrl": {"type": "string", "description": "Where the same body can be fetched: "
                       "GET /api/chat/{id}/turns/{n}/request."},
        "pinned": _STRING_LIST, "leftOut": _STRING_LIST, "notes": _STRING_LIST,
    },
}


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "History Lab API", "version": "1",
                 "description": "The seed's chat routes plus token counting and trimming, served by "
                                "`streamlit run app.py` beside the pages, on the same store. Bodies must be "
                                "sent as `Content-Type: application/json` (else 415), and a request whose "
                                "`Origin` header is not this app's own origin gets a 403, so a web page the "
                                "user visits cannot drive the API; clients that send no Origin (curl, SDKs) "
                                "are not affected."},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                    "type": "object", "required": ["type", "message"],
                    "properties": {"type": {"type": "string"}, "message": {"type": "string"}}}}},
                "Message": {"type": "object", "required": ["role"], "properties": {
                    "role": {"type": "string"},
                    "content": {"type": ["string", "array", "null"], "maxLength": MAX_CONTENT_CHARS,
                                "description": f"At most {MAX_CONTENT_CHARS:,} characters (a list of parts is "
                                               "measured as its JSON text)."},
                    "id": {"type": "string"}}},
                "ChatRequest": _CHAT_REQUEST, "ChatResponse": _CHAT_RESPONSE,
            },
        },
        "security": [{}, {"bearer": []}],
        "paths": {
            "/api/chat": {"post": {
                "summary": "Send one message (starts a session when sessionId is missing).",
                "requestBody": _body({"$ref": "#/components/schemas/ChatRequest"}),
                "responses": {"200": {"description": "The reply (JSON), or an SSE stream when stream is true.",
                                      "content": {"application/json": {"schema": {
                                          "$ref": "#/components/schemas/ChatResponse"}},
                                          "text/event-stream": {"schema": {"type": "string"}}}},
                              **_errors(400, 415, 502, 503)}}},
            "/api/chat/{session_id}": {
                "parameters": [_SESSION_PARAM],
                "get": {"summary": "The session's messages, turn records and settings.",
                        "responses": {"200": _json({"type": "object", "properties": {
                            "sessionId": {"type": "string"}, "messages": _MESSAGES,
                            "turns": {"type": "array", "items": {"type": "object"}},
                            "ttl": {"type": ["integer", "null"]},
                            "settings": {"type": ["object", "null"], "description": "What the last turn ran "
                                         "with, under POST /api/chat's names (null before the first turn)."}}}),
                                      **_errors(400, 404, 503)}},
                "delete": {"summary": "Delete the session (messages, turn records, meta).",
                           "responses": {"200": _json({"type": "object", "properties": {
                               "message": {"const": "Session cleared"}}}), **_errors(400, 503)}},
            },
            "/api/chat/{session_id}/turns/{turn}/request": {
                "parameters": [_SESSION_PARAM, {"name": "turn", "in": "path", "required": True,
                                                "schema": {"type": "integer", "minimum": 1}}],
                "get": {"summary": "The exact request body a turn sent, rebuilt through the adapter that sent it "
                                   "(the body every page shows; null when no request was made).",
                        "responses": {"200": _json({"type": "object", "properties": {
                            "sessionId": {"type": "string"}, "turn": {"type": "integer"},
                            "request": {"type": ["object", "null"]}, "complete": {"type": "boolean"},
                            "missing": _STRING_LIST, "note": {"type": ["string", "null"]}}}),
                            **_errors(400, 404, 503)}},
            },
            "/api/tokens": {"post": {
                "summary": "Estimate and exact count per message and in total.",
                "requestBody": _body({"type": "object", "required": ["messages"], "properties": {
                    "messages": _MESSAGES, "model": {**_MODEL, "default": "gpt-4o-mini"}}}),
                "responses": {"200": _json({"type": "object"}), **_errors(400, 413, 415)}}},
            "/api/trim": {"post": {
                "summary": "Run the trimmer: kept and dropped (indexes and ids), tokens before and after, problems.",
                "requestBody": _body({"type": "object", "required": ["messages"], "properties": {
                    "messages": _MESSAGES, "budget": _BUDGET,
                    "strategy": {"type": "string"}, "model": _MODEL,
                    "reserve": _RESERVE, "cut": {}}}),
                "responses": {"200": _json({"type": "object"}), **_errors(400, 413, 415)}}},
            "/api/health": {"get": {"summary": "The store kind and whether it answers.",
                                    "responses": {"200": _json({"type": "object"}), **_errors(503)}}},
            "/api/openapi.json": {"get": {"summary": "This document.",
                                          "responses": {"200": _json({"type": "object"})}}},
        },
    }
