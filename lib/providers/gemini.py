"""Google Gemini through the official google-genai SDK: ``contents`` with roles user/model, the system prompt
as ``systemInstruction``, implicit caching always, explicit context caches as an option.

The request body shown (``Reply.request``) is the REST body the SDK sends to
``models/{model}:streamGenerateContent?alt=sse``: the model is in the URL, not in the body. With an explicit
cache, ``send`` first creates (or reuses) a cache holding the system instruction and the stable history
(``caches.create`` with a TTL), then sends only the rest with ``cachedContent`` naming it; the body is
completed in place, so the view shows what went over the wire.

google-genai is imported on first use (about half a second): listing providers for the sidebar builds no
client and imports nothing.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from lib.core import GEMINI_TOOLS_OFF, Message, gemini_tools, mask_then_cut
from lib.costs import IMPLICIT_PROFILE, PROFILES, REUSE_MARGIN_S, plan_explicit
from lib.providers.anthropic_messages import LEADING_USER, message_text
from lib.providers.base import Capabilities, ProviderOptions, Reply, split_system
from lib.providers.errors import AuthenticationFailed, MalformedStream, ProviderError, Refused
from lib.providers.remote import RemoteProvider
from lib.providers.sdk_errors import DETAIL_CHARS, TRANSLATABLE, status_error
from lib.providers.usage import gemini_usage
from lib.tokens import count_tokens

if TYPE_CHECKING:
    from google import genai

GEMINI_URL = "https://generativelanguage.googleapis.com/"
# Current models (Gemini API model list and caching page, checked 2026-12-06), each with a row in
# lib/core/pricing.py. gemini-3.8-flash was released on 2026-09-02.
GEMINI_MODELS = ("gemini-3.8-flash", "gemini-3.1-pro-preview", "gemini-2.5-flash", "gemini-2.5-pro",
                 "gemini-2.5-flash-lite")
TTL_SECONDS = {"5m": 300, "1h": 3600}
# Finish reasons that mean the model (or its filters) declined, not that it finished.
REFUSAL_REASONS = ("SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY")
MAX_CACHES = 256  # explicit caches remembered per provider (expired ones are forgotten first)


@dataclass(frozen=True)
class _Cache:
    name: str
    tokens: int
    expires: float  # time.time() seconds


class GeminiProvider(RemoteProvider):
    name = "gemini"
    label = "Google (Gemini API)"
    default_model = GEMINI_MODELS[0]
    models = GEMINI_MODELS
    env_var = "GEMINI_API_KEY"
    capabilities = Capabilities(prompt_caching=True, count_endpoint=True, needs_key=True)
    default_base_url = GEMINI_URL
    caching_note = ("An explicit context cache: the system prompt and the stable history are stored with "
                    "caches.create for the TTL and named in cachedContent; the cache's tokens are billed once, "
                    "then per hour of storage. Gemini also caches implicitly, with no switch and no fee.")

    def __init__(self, *, prompt_caching: bool = False, env_var: str = "GEMINI_API_KEY", **options: Any) -> None:
        super().__init__(**options)
        self.prompt_caching = prompt_caching
        self.env_var = env_var  # GOOGLE_API_KEY when the key came from it, so errors name the right one
        self._caches: dict[tuple[str, str], _Cache] = {}  # (model, prefix digest) -> a cache this process made
        self._caches_lock = threading.Lock()

    @property
    def hint(self) -> str:
        return ("Set GEMINI_API_KEY (or GOOGLE_API_KEY) in the environment or in .streamlit/secrets.toml; "
                "GEMINI_BASE_URL points it at another server.")

    def ensure_ready(self) -> None:
        super().ensure_ready()
        if len(self.translatable_errors) == len(TRANSLATABLE):
            import pydantic
            from google.genai import errors as genai_errors  # late: the SDK takes half a second to import

            # The SDK validates every response with pydantic: a field of the wrong type is a malformed answer.
            self.translatable_errors = (*TRANSLATABLE, genai_errors.APIError, pydantic.ValidationError)

    def _new_client(self) -> genai.Client:
        from google import genai
        from google.genai import types

        retry = types.HttpRetryOptions(attempts=self.max_retries + 1) if self.max_retries else None
        return genai.Client(api_key=self._api_key, vertexai=False, http_options=types.HttpOptions(
            base_url=self.base_url, timeout=int(self.timeout * 1000), retry_options=retry))

    # -- the request --------------------------------------------------------------------------------------

    def _payload(self, messages: Sequence[Message]) -> dict[str, Any]:
        system, conversation = split_system(messages)
        body: dict[str, Any] = {"contents": gemini_contents(conversation)}
        if system:
            body["systemInstruction"] = {"parts": [{"text": system}]}
        return body

    def build_request(self, messages: Sequence[Message], *, model: str, max_tokens: int,
                      options: ProviderOptions) -> dict[str, Any]:
        body = self._payload(messages)
        if options.tools:  # offered, never called: the lab shows what the definitions cost
            body.update(tools=gemini_tools(options.tools), toolConfig=GEMINI_TOOLS_OFF)
        return {**body, "generationConfig": {"maxOutputTokens": max_tokens}}

    def send(self, request: dict[str, Any], *, model: str, options: ProviderOptions, reply: Reply) -> Iterable[Any]:
        if options.prompt_caching or self.prompt_caching:
            self._use_explicit_cache(request, model=model, ttl=TTL_SECONDS[options.cache_ttl], reply=reply)
        config: dict[str, Any] = {"max_output_tokens": request["generationConfig"]["maxOutputTokens"]}
        if "systemInstruction" in request:
            config["system_instruction"] = request["systemInstruction"]
        if "tools" in request:  # the SDK's models take the REST (camelCase) names as well as its own
            config["tools"], config["tool_config"] = request["tools"], request["toolConfig"]
        if "cachedContent" in request:
            config["cached_content"] = request["cachedContent"]
        stream: Iterable[Any] = self.client.models.generate_content_stream(model=model, contents=request["contents"],
                                                                           config=config)
        return stream

    def _use_explicit_cache(self, request: dict[str, Any], *, model: str, ttl: int, reply: Reply) -> None:
        """Reuse or create an explicit cache for the stable prefix, and move that prefix out of ``request``."""
        contents, system = request["contents"], request.get("systemInstruction")
        tools: dict[str, Any] = {k: request[k] for k in ("tools", "toolConfig") if k in request}
        # The cache holds the tools too (a request naming a cache may not set them), so they are in its key.
        digests = prefix_digests([system, tools], contents)
        stable = len(contents) - 1  # everything before the new message
        tokens_upto = _tokens_upto(system, contents[:stable], model)
        now = time.time()
        with self._caches_lock:
            live = {k: c for k in range(stable + 1)
                    if (c := self._caches.get((model, digests[k]))) and c.expires - now > REUSE_MARGIN_S}
        plan = plan_explicit(tokens_upto, list(live), min_tokens=PROFILES[IMPLICIT_PROFILE].min_prefix_for(model),
                             has_system=system is not None)
        reply.state["explicit_cache"] = plan.reason
        if plan.depth is None:
            return
        if plan.create is not None:
            cache = self._create_cache(model, system, contents[: plan.create], ttl=ttl, tools=tools)
            with self._caches_lock:
                self._forget_expired(now)
                self._caches[(model, digests[plan.create])] = cache
            reply.state["explicit_cache_created"] = (cache.tokens, ttl / 3600)
        else:
            cache = live[plan.depth]
        # A request naming a cache must not repeat what it holds: the system instruction, the tools and the prefix.
        for held in ("systemInstruction", "tools", "toolConfig"):
            request.pop(held, None)
        request["contents"] = contents[plan.depth:]
        request["cachedContent"] = cache.name

    def _create_cache(self, model: str, system: Any, contents: list[dict[str, Any]], *, ttl: int,
                      tools: dict[str, Any]) -> _Cache:
        config: dict[str, Any] = {"ttl": f"{ttl}s", "display_name": "history-lab"}
        if tools:
            config["tools"], config["tool_config"] = tools["tools"], tools["toolConfig"]
        if contents:
            config["contents"] = contents
        if system is not None:
            config["system_instruction"] = system
        created = self.call(lambda: self.client.caches.create(model=model, config=config))
        tokens = getattr(getattr(created, "usage_metadata", None), "total_token_count", None)
        if not created.name or not isinstance(tokens, int):
            raise ProviderError(f"{self.label} created a context cache without a name or token count; check "
                                "GEMINI_BASE_URL.", provider=self.label)
        return _Cache(created.name, tokens, time.time() + ttl)

    def _forget_expired(self, now: float) -> None:
        for key in [k for k, c in self._caches.items() if c.expires <= now]:
            del self._caches[key]
        while len(self._caches) >= MAX_CACHES:  # the oldest insertion goes first
            del self._caches[next(iter(self._caches))]

    # -- the events ---------------------------------------------------------------------------------------

    def handle_event(self, event: Any, reply: Reply) -> str:
        if reply.response_id is None and getattr(event, "response_id", None):
            reply.response_id = event.response_id
        feedback = getattr(event, "prompt_feedback", None)
        blocked = getattr(feedback, "block_reason", None)
        if blocked:
            reply.stop_reason = _enum(blocked)
            reply.refusal = _enum(blocked)
        if getattr(event, "usage_metadata", None) is not None:  # cumulative: the last one is the total
            created = reply.state.get("explicit_cache_created") or (0, 0.0)
            reply.usage = gemini_usage(event.usage_metadata, explicit_cache_tokens=created[0],
                                       explicit_cache_hours=created[1])
        text = []
        for candidate in getattr(event, "candidates", None) or ():
            if candidate.finish_reason:
                reply.stop_reason = _enum(candidate.finish_reason)
            content = getattr(candidate, "content", None)
            for part in getattr(content, "parts", None) or ():
                if part.text and not part.thought:  # thought summaries are not the answer
                    text.append(part.text)
        return "".join(text)

    def finish(self, reply: Reply) -> None:
        if reply.usage is not None and reply.state.get("explicit_cache"):
            note = json.dumps({"explicit_cache": reply.state["explicit_cache"]})
            reply.usage = replace(reply.usage, diagnostics=note)
        if reply.refusal or (reply.stop_reason in REFUSAL_REASONS and not reply.text):
            reason = reply.refusal or reply.stop_reason or "no reason given"
            reply.refusal = reason
            raise Refused(f"{self.label} declined to answer ({reason}). Rephrase the request.",
                          provider=self.label, reason=reason)

    def count_tokens(self, messages: Sequence[Message], model: str, *,
                     options: ProviderOptions | None = None) -> int:
        """The exact input tokens of this request, from ``models.count_tokens`` (a network call).

        The SDK refuses ``system_instruction`` and ``tools`` in a Gemini API count, so a request with either is
        counted as a whole ``generateContentRequest`` (the API then ignores the top-level ``contents``)."""
        body = self._payload(messages)
        if options is not None and options.tools:
            body.update(tools=gemini_tools(options.tools), toolConfig=GEMINI_TOOLS_OFF)
        config: dict[str, Any] | None = None
        if "systemInstruction" in body or "tools" in body:
            config = {"http_options": {"extra_body": {"generateContentRequest": {"model": f"models/{model}", **body}}}}
        result = self.call(lambda: self.client.models.count_tokens(model=model, contents=body["contents"],
                                                                   config=config))
        return int(result.total_tokens)

    def translate_error(self, exc: Exception) -> ProviderError:
        import pydantic
        from google.genai import errors as genai_errors

        if isinstance(exc, genai_errors.APIError):
            return _api_error(exc, provider=self.label, env_var=self.env_var)
        if isinstance(exc, pydantic.ValidationError):
            problems = exc.errors()
            where = ".".join(str(p) for p in problems[0]["loc"]) if problems else "?"
            what = problems[0]["msg"] if problems else str(exc)
            return MalformedStream(f"{self.label} at {self.base_url} sent a response that does not match the Gemini "
                                   f"API ({where}: {mask_then_cut(what, 120)}). Check GEMINI_BASE_URL.",
                                   provider=self.label)
        return super().translate_error(exc)


def gemini_contents(conversation: Sequence[Message]) -> list[dict[str, Any]]:
    """Contents with roles user/model, one text part per message, consecutive same roles in one content,
    starting with a user turn (Gemini, like Anthropic, wants the conversation to open with the user)."""
    contents: list[dict[str, Any]] = []
    for message in conversation:
        role = "model" if message.get("role") == "assistant" else "user"
        part = {"text": message_text(message)}
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].append(part)
        else:
            contents.append({"role": role, "parts": [part]})
    if contents and contents[0]["role"] != "user":
        contents.insert(0, {"role": "user", "parts": [{"text": LEADING_USER}]})
    return contents


def prefix_digests(system: Any, contents: Sequence[Any]) -> list[str]:
    """A digest of the system instruction plus the first k contents, for k = 0..len(contents), in one pass."""
    digest = hashlib.sha256(json.dumps(system, sort_keys=True).encode())
    digests = [digest.hexdigest()]
    for content in contents:
        digest.update(json.dumps(content, sort_keys=True).encode())
        digests.append(digest.copy().hexdigest())
    return digests


def _tokens_upto(system: Any, contents: Sequence[dict[str, Any]], model: str) -> list[int]:
    """Approximate tokens (tiktoken's o200k stands in for Gemini's tokenizer) of each stable prefix, only to
    keep below-minimum prefixes out of caches.create."""
    def size(value: Any) -> int:
        return sum(count_tokens(str(p.get("text", "")), model) for p in (value or {}).get("parts", ()))

    totals = [size(system)]
    for content in contents:
        totals.append(totals[-1] + size(content))
    return totals


def _enum(value: Any) -> str:
    return str(getattr(value, "value", value))


def _api_error(exc: Any, *, provider: str, env_var: str | None) -> ProviderError:
    """google-genai's APIError (``code``, ``message``, ``details``) into our error family."""
    details = exc.details if isinstance(exc.details, dict) else {}
    error = details.get("error", details) if isinstance(details.get("error", details), dict) else {}
    infos = [d for d in error.get("details") or () if isinstance(d, dict)]
    detail = mask_then_cut(str(exc.message or exc), DETAIL_CHARS)
    status = int(exc.code or 0)
    if any(info.get("reason") == "API_KEY_INVALID" for info in infos):
        # The Gemini API answers a bad key with 400 INVALID_ARGUMENT and this reason, not with 401.
        return AuthenticationFailed(f"{provider} rejected the API key (HTTP {status}: {detail}). Check {env_var}.",
                                    provider=provider, status=status)
    retry = next((str(i["retryDelay"]).rstrip("s") for i in infos if i.get("retryDelay")), None)
    return status_error(status, detail, provider=provider, env_var=env_var, retry_after=retry)
