"""The provider template: the base class owns ``stream()``; an adapter builds the request and parses events.

    reply = provider.stream(messages, model="gpt-5-mini", options=ProviderOptions(prompt_caching=True))
    for delta in reply: ...
    reply.text, reply.usage, reply.timings, reply.request, reply.response_id

``Reply.request`` (the exact JSON body, never a key) is there from the start, so a payload view can show it
even when the call fails. Per-provider features (server-side history, caching, compaction, strict
validation) are typed ``ProviderOptions`` in and ``Capabilities`` out, so callers never switch on names.
"""

from __future__ import annotations

import contextlib
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

from lib.core import MAX_REPLY_CHARS, CacheTTL, Message, ToolDef, Usage
from lib.providers.errors import CountUnavailable, MalformedStream, ProviderError
from lib.providers.guard import StreamGuard


@dataclass(frozen=True)
class ProviderOptions:
    """Per-call options. A provider ignores what its ``Capabilities`` say it cannot do."""

    previous_response_id: str | None = None  # Responses: chain on the server's copy of the history
    conversation_id: str | None = None  # Responses: a Conversations API object holds the history
    prompt_caching: bool = False  # Anthropic: cache_control breakpoints; Gemini: an explicit context cache
    cache_ttl: CacheTTL = "5m"  # Anthropic: the breakpoints' TTL; Gemini: the explicit cache's TTL
    truncation: Literal["auto", "disabled"] | None = None  # Responses: let the server drop old items
    compaction_threshold: int | None = None  # server-side compaction once the context passes this many tokens
    strict: bool = False  # reject what a strict API would (offline: an assistant-first payload)
    context_window: int | None = None  # offline: the window it validates against
    # The turn number of each payload message (0 for system/summary), so the offline model can name turns.
    turn_numbers: tuple[int, ...] | None = None
    current_turn: int | None = None
    # OpenAI gpt-5.6+: requests sharing this key are routed to the same cache (prompt_cache_key).
    prompt_cache_key: str | None = None
    # The previous reply of the same provider and model, so the provider says why the cache missed against
    # it (OpenAI prompt_cache_options.comparison_response_id, Anthropic diagnostics.previous_message_id).
    cache_comparison_id: str | None = None
    # Tool definitions sent in the provider's own shape, with tool_choice "none" (lib.core.tools says why).
    # Not a body field: a record keeps the set's hash, and the set itself once in the session meta.
    tools: tuple[ToolDef, ...] = ()

    def body_fields(self) -> dict[str, Any]:
        """The options that shape a request body, where they differ from the defaults (small scalars).

        A turn record keeps these so its body can be rebuilt by the same adapter code that sent it; the
        options that only steer this process (validation, the offline model's turn labels) are left out.
        """
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name not in RUNTIME_ONLY_OPTIONS and getattr(self, f.name) != f.default
                and isinstance(getattr(self, f.name), str | int | bool)}

    @classmethod
    def from_body_fields(cls, stored: Mapping[str, Any]) -> ProviderOptions:
        """Options from ``body_fields`` as stored; unknown names and values of the wrong type are ignored."""
        kept = {f.name: stored[f.name] for f in fields(cls)
                if f.name in stored and f.name not in RUNTIME_ONLY_OPTIONS and _fits(stored[f.name], f.default)}
        return replace(cls(), **kept)


def _fits(value: object, default: object) -> bool:
    """A stored scalar of the same kind as the field's default (a field defaulting to None takes str or int)."""
    if isinstance(value, bool) or isinstance(default, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if default is None:
        return isinstance(value, str | int)
    return type(value) is type(default)


# Options that never reach a request body: the offline model validates and labels turns with them.
RUNTIME_ONLY_OPTIONS = frozenset({"strict", "context_window", "turn_numbers", "current_turn"})


@dataclass(frozen=True)
class Capabilities:
    """What a provider can do; pages and chat read these instead of provider names."""

    server_side_history: bool = False  # keeps the history itself (previous_response_id, conversations)
    prompt_caching: bool = False  # has an explicit prompt-caching switch
    server_compaction: bool = False  # can compact the context on the server
    count_endpoint: bool = False  # ``count_tokens`` asks the provider for an exact input count
    # Where that count comes from, as lib.tokens.count_label names it: the provider's count endpoint, or a
    # local server's own tokenizer (llama.cpp's /tokenize).
    count_source: Literal["endpoint", "server"] = "endpoint"
    strict_validation: bool = False  # honours ``ProviderOptions.strict``
    simulated_cache: bool = False  # its cache figures are simulated, not measured
    needs_key: bool = False
    # Runs locally with no network: its own summaries are extractive, not a paid request to itself.
    local: bool = False
    # How it keeps the history, first the default: "previous_response", "conversation" (OpenAI Responses),
    # "thread" (Anthropic's server-side threads). Empty: it keeps nothing, the history is re-sent.
    server_state_modes: tuple[str, ...] = ()
    # Reads ``ProviderOptions.turn_numbers`` (the offline model names the turns it can see); for the others
    # the numbers are not worked out at all: a pass over the whole history per turn, for nothing.
    names_turns: bool = False


@dataclass
class Timings:
    """Seconds from the call to the first text delta, and to the end of the stream."""

    first_token_s: float | None = None
    total_s: float | None = None


@dataclass(frozen=True)
class ProviderInfo:
    """What the sidebar shows about a provider."""

    name: str
    label: str
    default_model: str
    models: tuple[str, ...]
    configured: bool
    hint: str
    env_var: str | None = None
    capabilities: Capabilities = field(default_factory=Capabilities)
    caching_note: str = ""  # what the prompt-caching switch does for this provider


@dataclass(frozen=True)
class ServerContext:
    """What the server did to the context: a compaction item, or Anthropic's applied context edits."""

    kind: str  # "compaction" or an edit type such as "clear_tool_uses_20250919"
    detail: dict[str, Any]


class Reply:
    """One streamed answer. The provider's event handler fills the fields below as events arrive.

    ``text`` is joined from the chunks when read (once per change), never on every delta: a 5 MB reply in
    1 KB deltas would otherwise copy gigabytes. At ``max_chars`` the stream is closed and ``truncated`` set.
    """

    def __init__(
        self,
        request: dict[str, Any],
        events: Callable[[Reply], Iterable[str]],
        translate: Callable[[Exception], ProviderError],
        translatable: tuple[type[Exception], ...],
        *,
        max_chars: int | None = MAX_REPLY_CHARS,
    ) -> None:
        self.request = request
        self.options = ProviderOptions()  # the options the body was built with (set by Provider.stream)
        self.usage: Usage | None = None
        self.timings = Timings()
        self.response_id: str | None = None
        self.conversation_id: str | None = request.get("conversation") if isinstance(
            request.get("conversation"), str) else None
        self.stop_reason: str | None = None
        self.refusal: str | None = None  # the model's refusal text or reason, when it declined
        self.server_context: list[ServerContext] = []  # compaction items and applied context edits
        # What the model said about its own payload, beside the reply and never part of it (the offline model's
        # "what I can see"): stored in the reply's metadata, so it is not re-sent on later turns.
        self.report: tuple[str, ...] = ()
        self.state: dict[str, Any] = {}  # the adapter's working state while the stream runs
        self.max_chars = max_chars
        self.truncated = False  # the reply reached max_chars and the rest was never read
        self._chunks: list[str] = []
        self._length = 0
        self._joined = ""
        self._joined_count = 0
        self._events = events
        self._translate = translate
        self._translatable = translatable
        self._consumed = False

    @property
    def text(self) -> str:
        """The reply so far (joined only when the chunks changed since the last read)."""
        if self._joined_count != len(self._chunks):
            self._joined = "".join(self._chunks)
            self._joined_count = len(self._chunks)
        return self._joined

    @property
    def chars(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[str]:
        if self._consumed:
            raise RuntimeError("A Reply can be iterated only once")
        self._consumed = True
        start = time.perf_counter()
        events = iter(self._events(self))
        try:
            for delta in events:
                if not delta:
                    continue
                if self.max_chars is not None and self._length + len(delta) > self.max_chars:
                    delta = delta[:self.max_chars - self._length]
                    self.truncated = True
                if self.timings.first_token_s is None and delta:
                    self.timings.first_token_s = time.perf_counter() - start
                if delta:
                    self._chunks.append(delta)
                    self._length += len(delta)
                    yield delta
                if self.truncated:
                    break  # the finally below closes the provider stream: the rest is never read
        except ProviderError:
            raise
        except self._translatable as exc:
            # Only SDK, HTTP and JSON failures are translated; anything else is a bug and propagates
            # so the UI boundary logs it with its traceback.
            raise self._translate(exc) from exc
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()
            self.timings.total_s = time.perf_counter() - start


class Provider(ABC):
    """The base owns ``stream``; an adapter implements the three steps below it."""

    name: str = ""
    label: str = ""
    default_model: str = ""
    models: tuple[str, ...] = ()
    env_var: str | None = None
    capabilities: Capabilities = Capabilities()
    caching_note: str = ""

    def __init__(self, *, api_key: str | None = None) -> None:
        self._api_key = api_key

    def __repr__(self) -> str:  # never the key
        return f"{type(self).__name__}(name={self.name!r})"

    @property
    def configured(self) -> bool:
        return self.env_var is None or bool(self._api_key)

    @property
    def server_side_history(self) -> bool:
        return self.capabilities.server_side_history

    @property
    def hint(self) -> str:
        """What to set to use this provider (shown when it is not configured)."""
        if self.env_var:
            return f"Set {self.env_var} in the environment or in .streamlit/secrets.toml."
        return "No key needed."

    @property
    def info(self) -> ProviderInfo:
        return ProviderInfo(self.name, self.label, self.default_model, self.models, self.configured, self.hint,
                            self.env_var, self.capabilities, self.caching_note)

    def stream(
        self,
        messages: Sequence[Message],
        *,
        model: str,
        max_tokens: int = 1024,
        options: ProviderOptions | None = None,
        guard: StreamGuard | None = None,
        max_reply_chars: int | None = MAX_REPLY_CHARS,
    ) -> Reply:
        """Build the request now (so it can be shown even if the call fails); send it when iterated.

        ``guard`` is checked before the request is opened and on every event (empty ones included); when it
        trips, the connection is cut and StreamStopped or StreamTimeLimit is raised. The provider stream is
        closed however the iteration ends: finished, failed, cut at ``max_reply_chars`` or abandoned.
        """
        self.ensure_ready()
        chosen = self.effective_options(options or ProviderOptions())
        request = self.build_request(messages, model=model, max_tokens=max_tokens, options=chosen)

        def events(reply: Reply) -> Iterator[str]:
            if guard is not None:
                guard.check()  # a client that left while the turn waited costs no provider request
            stream = self.send(request, model=model, options=chosen, reply=reply)
            unregister = guard.on_abort(lambda: self.abort_stream(stream)) if guard is not None else None
            spoke = False
            try:
                for event in stream:
                    if guard is not None:
                        guard.check()
                    delta = self.handle_event(event, reply)
                    spoke = spoke or bool(delta)
                    yield delta
                if guard is not None:
                    guard.check()  # an aborted connection reads as the end of the stream
                self.finish(reply)
            except Exception:
                if guard is not None and guard.tripped:
                    guard.check()  # the cut connection's own error is not the reason: say why it was cut
                raise
            finally:
                if unregister is not None:
                    unregister()
                self.close_stream(stream)
            if not spoke and reply.stop_reason is None and reply.usage is None:
                # A real answer, even an empty one, ends with a finish reason or usage. Nothing at all is
                # what a web page or a proxy's login page parses to: not "the model said nothing".
                raise self.empty_stream_error(stream)

        reply = Reply(request, events, self.translate_error, self.translatable_errors, max_chars=max_reply_chars)
        reply.options = chosen
        return reply

    def close_stream(self, stream: Iterable[Any]) -> None:
        """Release the provider connection (the SDK streams and generators have ``close``)."""
        close = getattr(stream, "close", None)
        if callable(close):
            with contextlib.suppress(Exception):  # closing a connection that is already gone
                close()

    def abort_stream(self, stream: Iterable[Any]) -> None:
        """Cut the connection from another thread, so a worker blocked reading it wakes up now.

        Nothing to cut here: an in-process stream yields events, and the guard is checked on each.
        """
        return

    def effective_options(self, options: ProviderOptions) -> ProviderOptions:
        """``options`` with this instance's defaults folded in, so ``build_request`` depends on its arguments
        alone: a turn record that keeps them rebuilds the same body."""
        return options

    def ensure_ready(self) -> None:
        """Raise a ProviderError (e.g. MissingKeyError) before anything is built or sent."""
        return  # a provider that needs nothing (the offline model) is always ready

    @abstractmethod
    def build_request(self, messages: Sequence[Message], *, model: str, max_tokens: int,
                      options: ProviderOptions) -> dict[str, Any]:
        """The exact JSON body to send, without any key."""

    def open_stream(self, request: dict[str, Any]) -> Iterable[Any]:
        """Send ``request`` and return its events (the step most adapters implement)."""
        raise NotImplementedError(f"{type(self).__name__} implements neither open_stream nor send")

    def send(self, request: dict[str, Any], *, model: str, options: ProviderOptions, reply: Reply) -> Iterable[Any]:
        """Send ``request`` and return its events. An adapter whose call needs more than the body overrides
        this (Gemini: the model goes in the URL, and an explicit cache is created first); it may complete
        ``request`` in place, so ``reply.request`` stays the body that was sent."""
        return self.open_stream(request)

    @abstractmethod
    def handle_event(self, event: Any, reply: Reply) -> str:
        """Record what ``event`` says on ``reply``; return its text delta ("" when it has none)."""

    def finish(self, reply: Reply) -> None:
        """Called once after the last event (e.g. to raise for a refusal the stream ended with)."""
        return

    def empty_stream_error(self, stream: Iterable[Any]) -> ProviderError:
        """The error for a stream that ended with no text, no finish reason and no usage."""
        return MalformedStream(f"{self.label or self.name} ended its reply without any text, finish reason or "
                               "usage: the stream was not a reply.", provider=self.name)

    translatable_errors: tuple[type[Exception], ...] = ()

    def count_tokens(self, messages: Sequence[Message], model: str, *,
                     options: ProviderOptions | None = None) -> int:
        """The provider's own count of this request's input tokens (when ``capabilities.count_endpoint``)."""
        raise CountUnavailable(f"{self.label or self.name} has no token-count endpoint; use the tiktoken "
                               "count, labelled approximate for this provider.", provider=self.name)

    def translate_error(self, exc: Exception) -> ProviderError:
        """The user-facing error for one of ``translatable_errors``."""
        return ProviderError(f"{self.label or self.name} failed: {exc}", provider=self.name)


def split_system(messages: Sequence[Message]) -> tuple[str, list[dict[str, Any]]]:
    """The system prompt(s) joined, and the other messages as wire dicts."""
    system = [str(m.get("content") or "") for m in messages if m.get("role") in ("system", "developer")]
    rest = [dict(m) for m in messages if m.get("role") not in ("system", "developer")]
    return "\n\n".join(s for s in system if s), rest
