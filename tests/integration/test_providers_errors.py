"""One error family: what is translated, what propagates as a bug, server failures, refusals, masking."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pytest

from lib.core import HistoryLabError, Message, register_secrets
from lib.providers import (
    AuthenticationFailed,
    MalformedStream,
    Provider,
    ProviderError,
    ProviderOptions,
    Refused,
    Reply,
    ResponseFailed,
)
from tests.support.fake_llm import wire_provider as provider

# A key that matches no well-known key shape: only registration can mask it.
LOCAL_KEY = "vllm-token-abc123xyz"
HI = [{"role": "user", "content": "hi"}]




class BuggyProvider(Provider):
    """A provider whose event parsing has a bug (it subclasses the real base, like every fake)."""

    name = "buggy"
    label = "Buggy"
    translatable_errors = (ValueError,)

    def build_request(self, messages: Sequence[Message], *, model: str, max_tokens: int,
                      options: ProviderOptions) -> dict[str, Any]:
        return {"model": model}

    def open_stream(self, request: dict[str, Any]) -> Iterable[Any]:
        return ["ok ", None]

    def handle_event(self, event: Any, reply: Reply) -> str:
        return event.upper()  # AttributeError on None: a bug, not a provider failure


def test_every_provider_error_is_a_history_lab_error():
    assert issubclass(ProviderError, HistoryLabError) and issubclass(ProviderError, RuntimeError)
    for cls in (Refused, ResponseFailed, MalformedStream, AuthenticationFailed):
        assert issubclass(cls, ProviderError)


def test_a_bug_in_an_adapter_propagates_instead_of_blaming_the_provider():
    reply = BuggyProvider().stream(HI, model="m")
    with pytest.raises(AttributeError):
        "".join(reply)
    assert reply.text == "OK "


def test_only_declared_errors_are_translated():
    class Failing(BuggyProvider):
        def handle_event(self, event: Any, reply: Reply) -> str:
            raise ValueError("bad frame")

    with pytest.raises(ProviderError, match="Buggy failed: bad frame"):
        "".join(Failing().stream(HI, model="m"))


def test_the_template_cannot_be_instantiated_without_its_steps():
    class Incomplete(Provider):
        pass

    with pytest.raises(TypeError, match="abstract"):
        Incomplete()  # type: ignore[abstract]


def test_response_failed_carries_the_servers_reason(fake_llm):
    fake_llm.fail_next("response.failed", code="server_error", message="The model crashed")
    reply = provider("openai-responses", fake_llm).stream(HI, model="gpt-5.4-mini")
    with pytest.raises(ResponseFailed, match=r"server_error: The model crashed") as raised:
        "".join(reply)
    assert (raised.value.reason, raised.value.code) == ("The model crashed", "server_error")
    assert reply.response_id  # known from response.created, so the page can show it


@pytest.mark.parametrize("name", ["openai", "openai-responses", "anthropic"])
def test_a_refusal_is_its_own_error_with_the_reason(fake_llm, name):
    fake_llm.fail_next("refusal", message="I can't help with that request.")
    reply = provider(name, fake_llm).stream(HI, model="m")
    with pytest.raises(Refused, match="I can't help with that request") as raised:
        "".join(reply)
    assert raised.value.reason == "I can't help with that request."
    assert reply.refusal == "I can't help with that request."


@pytest.mark.parametrize("name", ["openai-compatible", "openai-responses", "anthropic"])
def test_a_401_quoting_a_registered_key_is_masked(fake_llm, name):
    prov = provider(name, fake_llm, api_key=LOCAL_KEY)  # building it registers the key
    fake_llm.fail_next(401, message=f"Incorrect API key provided: {LOCAL_KEY}. Check your key.")
    with pytest.raises(AuthenticationFailed) as raised:
        "".join(prov.stream(HI, model="m"))
    assert LOCAL_KEY not in str(raised.value) and LOCAL_KEY not in raised.value.user_message
    assert "Incorrect API key provided: ***" in str(raised.value)


def test_a_response_failed_reason_quoting_a_key_is_masked(fake_llm):
    register_secrets([LOCAL_KEY])
    fake_llm.fail_next("response.failed", code="server_error", message=f"bad token {LOCAL_KEY}")
    with pytest.raises(ResponseFailed) as raised:
        "".join(provider("openai-responses", fake_llm).stream(HI, model="m"))
    assert LOCAL_KEY not in str(raised.value) and LOCAL_KEY not in raised.value.reason
