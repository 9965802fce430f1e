"""Chat Completions chunks read as parsed JSON: text, refusal, stop reason, id and usage, and odd shapes."""

from __future__ import annotations

from lib.core import Settings
from lib.providers import Reply, get_provider


def _provider():
    return get_provider("openai-compatible", Settings(), base_url="http://127.0.0.1:9/v1")


def _reply() -> Reply:
    return Reply({}, lambda reply: iter(()), lambda exc: exc, ())  # type: ignore[arg-type, return-value]


def test_text_stop_reason_id_and_usage_from_parsed_chunks():
    provider, reply = _provider(), _reply()
    text = provider.handle_event({"id": "c1", "choices": [{"delta": {"content": "Hel"}}]}, reply)
    text += provider.handle_event({"id": "c1", "choices": [{"delta": {"content": "lo"}, "finish_reason": "stop"}]},
                                  reply)
    provider.handle_event({"id": "c1", "choices": [], "usage": {
        "prompt_tokens": 120, "completion_tokens": 2,
        "prompt_tokens_details": {"cached_tokens": 64, "cache_write_tokens_details": {"ttl_30m_tokens": 8}}}}, reply)
    assert text == "Hello" and reply.stop_reason == "stop" and reply.response_id == "c1"
    usage = reply.usage
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens) == (120, 2, 64)
    assert usage.cache_write_30m == 8 and usage.cache_reported


def test_a_server_without_cache_figures_reads_as_not_reported_and_refusals_are_kept():
    provider, reply = _provider(), _reply()
    provider.handle_event({"choices": [{"delta": {"refusal": "I can't"}}]}, reply)
    provider.handle_event({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 0}}, reply)
    assert reply.refusal == "I can't"
    assert reply.usage is not None and not reply.usage.cache_reported


def test_odd_chunks_are_read_as_nothing_rather_than_failing():
    provider, reply = _provider(), _reply()
    odd_chunks = ([1, 2], "text", None, {"choices": "abc"},
                  {"choices": [None, {"delta": None}, {"delta": {"content": 7}}]},
                  {"id": 5, "choices": [{"finish_reason": 3}]})
    for odd in odd_chunks:
        assert provider.handle_event(odd, reply) == ""
    assert reply.response_id is None and reply.stop_reason is None and reply.usage is None
