"""Token counts: the seed's chars/4 estimate beside exact tiktoken counts, each labelled with its source.

Exact counts follow the OpenAI cookbook's ``num_tokens_from_messages``: 3 tokens of
framing per message, the tokens of every wire value (role included), +1 when a
message carries a ``name`` and +3 to prime the reply.

Encodings come from lib.tokens.encodings (bundled files first, loaded once per process). Counts of each text are
kept in a plain dict per encoding, so a rerun over the same history costs a hash lookup per message.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import tiktoken
from tiktoken.model import encoding_name_for_model

# EncodingUnavailable and load_encoding are re-exported: callers import them from lib.tokens.counting.
from lib.core import WIRE_KEYS, ToolDef
from lib.tokens.encodings import EncodingUnavailable, load_encoding, reset_encodings

TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3
FALLBACK_ENCODING = "o200k_base"
# Only these keys go over the wire; id, ts and meta are ours and never reach a model.
# Per-text counts kept per encoding; past this many texts the older half is forgotten (amortised O(1)).
COUNT_CACHE_LIMIT = 200_000

CountSource = Literal["tiktoken", "tools", "endpoint", "server", "provider", "estimate", "simulated"]
ESTIMATE_LABEL = "estimate (chars/4)"
ENDPOINT_LABEL = "exact (provider count endpoint)"
SERVER_LABEL = "exact (server tokenizer)"  # a local server's own tokenizer and chat template (llama.cpp)
PROVIDER_LABEL = "provider-reported (after the call)"
SIMULATED_LABEL = "simulated"
TOOL_FRAMING = "tool framing per the OpenAI cookbook"
MISTRAL_TOOLS = "[AVAILABLE_TOOLS] as Mistral's template writes it"
# The OpenAI cookbook's num_tokens_for_tools ("How to count tokens with tiktoken", section 7): the tokens a
# Chat Completions request spends on tool definitions besides their text. Its gpt-4o constants serve every
# o200k_base model, its gpt-4/gpt-3.5 ones every cl100k_base model.
TOOL_CONSTANTS = {
    "o200k_base": {"func_init": 7, "prop_init": 3, "prop_key": 3, "enum_init": -3, "enum_item": 3, "func_end": 12},
    "cl100k_base": {"func_init": 10, "prop_init": 3, "prop_key": 3, "enum_init": -3, "enum_item": 3, "func_end": 12},
}


# Mistral models whose tokenizer is Tekken (tekken_240718, bundled): mistral-common's own table
# (MODEL_NAME_TO_TOKENIZER_CLS, 1.13.1) lists open-mistral-nemo-2407, ministral-8b-2410 and mistral-small-2409
# as "v3, tekken"; Ollama and LM Studio call Mistral NeMo "mistral-nemo". Matched on the name after any
# "org/" and before any ":tag", so "mistralai/Mistral-Nemo-Instruct-2407" and "mistral-nemo:12b" count too.
TEKKEN_MODELS = ("open-mistral-nemo", "mistral-nemo", "ministral-8b", "mistral-small-2409")
TEKKEN_ENCODING = "tekken_240718"
# Mistral's v3 instruct template (mistral-common's InstructTokenizerV3): <s> once, [INST] ... [/INST] around
# each user message, </s> after each assistant message, the system prompt joined into the last user message
# with "\n\n", [TOOL_CALLS] json </s>, [TOOL_RESULTS] json [/TOOL_RESULTS], [AVAILABLE_TOOLS] json [/...].
MISTRAL_BOS = 1


@dataclass(frozen=True)
class EncodingChoice:
    """Which encoding counts a model's tokens, and whether that count is only approximate.

    ``family`` says how a chat payload is framed around the text: "openai" (the cookbook's 3 tokens per
    message, +3 to prime the reply) or "mistral" (Mistral's v3 instruct template)."""

    model: str
    name: str
    approximate: bool
    family: str = "openai"

    @property
    def label(self) -> str:
        """The count label for a tiktoken count made with this choice (see count_label)."""
        return count_label("tiktoken", encoding=self.name, model=self.model)


@dataclass(frozen=True)
class MessageTokens:
    """One row of the per-message breakdown used by the token inspector."""

    index: int
    id: str | None
    role: str
    chars: int
    estimate: int
    exact: int | None


def content_text(content: Any) -> str:
    """The text the seed measured: strings as they are, anything else as JSON."""
    if isinstance(content, str):
        return content
    return json.dumps(content, ensure_ascii=False)


def estimate_tokens(text: Any) -> int:
    """The seed's rule, exactly: ceil(len(text) / 4)."""
    return math.ceil(len(content_text(text)) / 4)


@lru_cache(maxsize=1024)
def choose_encoding(model: str) -> EncodingChoice:
    """The one decider: OpenAI models get their own encoding (exact), Mistral's Tekken models the bundled
    tekken_240718 (exact); any other model (Claude, Llama, Qwen, other Mistral models, Gemma, the offline
    models, unknown names) gets o200k_base, flagged approximate."""
    base = model.rsplit("/", 1)[-1].split(":", 1)[0].lower()
    if base.startswith(TEKKEN_MODELS):
        return EncodingChoice(model, TEKKEN_ENCODING, approximate=False, family="mistral")
    try:
        name = encoding_name_for_model(model)
    except KeyError:
        return EncodingChoice(model, FALLBACK_ENCODING, approximate=True)
    return EncodingChoice(model, name, approximate=False)


def count_label(source: CountSource, *, encoding: str | None = None, model: str | None = None) -> str:
    """Where a count comes from, in the words every page, caption and API response uses.

    ``"tiktoken"`` with a ``model`` lets choose_encoding decide exact or approximate (``encoding`` defaults
    to the chosen one); with only an ``encoding`` it is an exact tiktoken count of that encoding.
    """
    if source in ("tiktoken", "tools"):
        choice = choose_encoding(model) if model else None
        name = encoding or (choice.name if choice else FALLBACK_ENCODING)
        mistral = name.startswith("tekken")
        framing = f"; {MISTRAL_TOOLS if mistral else TOOL_FRAMING}" if source == "tools" else ""
        if choice is not None and choice.approximate:
            return f"approximate ({name} stands in for {model}{framing})"
        return f"exact ({'Mistral Tekken' if mistral else 'tiktoken'}, {name}{framing})"
    labels = {"endpoint": ENDPOINT_LABEL, "server": SERVER_LABEL, "provider": PROVIDER_LABEL,
              "estimate": ESTIMATE_LABEL, "simulated": SIMULATED_LABEL}
    if source not in labels:
        raise ValueError(f"Unknown count source {source!r}; use one of tiktoken, {', '.join(labels)}")
    return labels[source]


def encoding_for(model: str) -> tiktoken.Encoding:
    """The tiktoken encoding for a model (see choose_encoding for which one, and whether it is approximate)."""
    return load_encoding(choose_encoding(model).name)


def encoding_available(model: str) -> bool:
    try:
        encoding_for(model)
    except EncodingUnavailable:
        return False
    return True


def reset_encoding_failures() -> None:
    """Forget earlier loads and failures, so a fixed TIKTOKEN_CACHE_DIR is picked up without a restart."""
    reset_encodings()


_counts: dict[str, dict[str, int]] = {}


def _count(encoding_name: str, text: str) -> int:
    # A plain dict: a hit is one hash lookup (str caches its hash), cheaper than lru_cache's bookkeeping;
    # races between threads only ever store the same number twice.
    cache = _counts.get(encoding_name)
    if cache is None:
        cache = _counts.setdefault(encoding_name, {})
    count = cache.get(text)
    if count is None:
        count = len(load_encoding(encoding_name).encode_ordinary(text))
        if len(cache) >= COUNT_CACHE_LIMIT:
            cache = _counts[encoding_name] = dict(list(cache.items())[COUNT_CACHE_LIMIT // 2:])
        cache[text] = count
    return count


def count_text(text: str, encoding_name: str) -> int:
    """Exact tokens of a text in a named encoding (encode_ordinary), cached per text."""
    return _count(encoding_name, text)


def clear_count_cache() -> None:
    """Forget every cached per-text count (benchmarks measure cold runs with this)."""
    _counts.clear()


def count_tokens(text: Any, model: str) -> int:
    """Exact token count of one text; encode_ordinary because chat text may contain <|endoftext|>."""
    return _count(choose_encoding(model).name, content_text(text))


def reply_priming(model: str) -> int:
    """Tokens a payload costs besides its messages: +3 to prime the reply (OpenAI), <s> once (Mistral)."""
    return MISTRAL_BOS if choose_encoding(model).family == "mistral" else REPLY_PRIMING


def message_tokens(message: Mapping[str, Any], model: str) -> int:
    """One message's share of a chat payload: framing plus every wire value, +1 for a name (OpenAI), or the
    message as Mistral's template writes it."""
    choice = choose_encoding(model)
    name = choice.name
    if choice.family == "mistral":
        return _mistral_message_tokens(message, name)
    total = TOKENS_PER_MESSAGE
    for key in WIRE_KEYS:
        value = message.get(key)
        if value is None:
            continue
        total += _count(name, value if isinstance(value, str) else content_text(value))
        if key == "name":
            total += TOKENS_PER_NAME
    return total


def _mistral_message_tokens(message: Mapping[str, Any], name: str) -> int:
    """One message in Mistral's v3 template. The system prompt is written into the last user message as
    "<system>\n\n<user>", which tokenizes as "<system>\n\n" plus the user text whenever the user text does
    not itself start with a line break (Tekken's pattern ends a piece at the line breaks)."""
    role = message.get("role")
    text = content_text(message.get("content") or "")
    if role in ("system", "developer"):
        return _count(name, text + "\n\n")
    if role == "user":
        return 2 + _count(name, text)  # [INST] ... [/INST]
    if role == "tool":
        result = {"content": _json_or_text(text), "call_id": message.get("tool_call_id")}
        return 2 + _count(name, json.dumps(result, ensure_ascii=False))  # [TOOL_RESULTS] ... [/TOOL_RESULTS]
    calls = [c for c in message.get("tool_calls") or [] if isinstance(c, Mapping)]
    if calls:
        written = [{"name": (c.get("function") or {}).get("name"),
                    "arguments": _json_or_text((c.get("function") or {}).get("arguments") or "{}"),
                    "id": c.get("id")} for c in calls]
        return 2 + _count(name, json.dumps(written, ensure_ascii=False))  # [TOOL_CALLS] ... </s>
    return 1 + _count(name, text)  # ... </s>


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def count_chat_tokens(messages: Iterable[Mapping[str, Any]], model: str) -> int:
    """Exact prompt tokens of a chat payload: the cookbook's num_tokens_from_messages, or for a Mistral Tekken
    model its v3 instruct template."""
    return sum(message_tokens(m, model) for m in messages) + reply_priming(model)


def count_tool_tokens(tools: Iterable[ToolDef], model: str) -> int:
    """Tokens the tool definitions add to a request: the OpenAI cookbook's ``num_tokens_for_tools`` (each
    function's "name:description" and each top-level parameter's "name:type:description", plus its framing
    constants), in the model's encoding. Label it with ``count_label("tools", model=model)``."""
    defs = list(tools)
    if not defs:
        return 0
    choice = choose_encoding(model)
    name = choice.name
    if choice.family == "mistral":  # [AVAILABLE_TOOLS] json.dumps of the Chat Completions shape [/AVAILABLE_TOOLS]
        shaped = [{"type": "function", "function": t.to_json()} for t in defs]
        return 2 + _count(name, json.dumps(shaped, ensure_ascii=False))
    constants = TOOL_CONSTANTS.get(name, TOOL_CONSTANTS["o200k_base"])
    total = constants["func_end"]
    for tool in defs:
        total += constants["func_init"] + _count(name, f"{tool.name}:{tool.description.removesuffix('.')}")
        properties = tool.parameters.get("properties") or {}
        if isinstance(properties, Mapping) and properties:
            total += constants["prop_init"]
            for key, spec in properties.items():
                spec = spec if isinstance(spec, Mapping) else {}
                total += constants["prop_key"]
                enum = spec.get("enum")
                if isinstance(enum, list):
                    total += constants["enum_init"]
                    total += sum(constants["enum_item"] + _count(name, str(item)) for item in enum)
                description = str(spec.get("description", "")).removesuffix(".")
                total += _count(name, f"{key}:{spec.get('type', '')}:{description}")
    return total


def estimate_chat_tokens(messages: Iterable[Mapping[str, Any]]) -> int:
    """The seed's estimate of a payload: chars/4 of each content, summed."""
    return sum(estimate_tokens(m.get("content", "")) for m in messages)


def message_breakdown(messages: Iterable[Mapping[str, Any]], model: str) -> list[MessageTokens]:
    """Estimate and exact count per message; exact is None when the encoding can't be loaded."""
    try:
        encoding_for(model)
        exact_ok = True
    except EncodingUnavailable:
        exact_ok = False
    rows = []
    for index, message in enumerate(messages):
        text = content_text(message.get("content", ""))
        rows.append(
            MessageTokens(
                index=index,
                id=message.get("id"),
                role=str(message.get("role", "")),
                chars=len(text),
                estimate=estimate_tokens(text),
                exact=message_tokens(message, model) if exact_ok else None,
            )
        )
    return rows
