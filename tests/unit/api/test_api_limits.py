"""Every /api route bounds its work: beyond a limit, a 413 or 400 that names the field and gives the numbers;
at the limit, the request is served."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import pytest

from lib.api import MAX_BUDGET, MAX_CONTENT_CHARS, MAX_MESSAGES, openapi_document
from tests.support.api_inprocess import Post, inprocess_api


@pytest.fixture
def api(monkeypatch) -> Post:
    return inprocess_api(monkeypatch)


def refused(response: httpx.Response, status: int, kind: str, *numbers: int) -> str:
    assert response.status_code == status, response.text[:500]
    error = response.json()["error"]
    assert error["type"] == kind, error
    for number in numbers:
        assert f"{number:,}" in error["message"], (number, error["message"])
    return error["message"]


def messages(n: int) -> list[dict[str, Any]]:
    return [{"role": ("user", "assistant")[i % 2], "content": "x"} for i in range(n)]


@pytest.mark.parametrize("path", ["/tokens", "/trim"])
def test_too_many_messages_is_413_with_both_numbers(api, path):
    message = refused(api(path, {"messages": messages(MAX_MESSAGES + 1)}), 413, "too_many_messages",
                      MAX_MESSAGES, MAX_MESSAGES + 1)
    assert "'messages'" in message


def test_the_message_limit_itself_is_served(api):
    response = api("/trim", {"messages": messages(MAX_MESSAGES), "budget": 1_000, "strategy": "seed"})
    assert response.status_code == 200, response.text[:500]
    assert len(response.json()["kept"]) + len(response.json()["dropped"]) == MAX_MESSAGES


@pytest.mark.parametrize("path", ["/tokens", "/trim"])
def test_a_message_over_the_character_cap_is_400_naming_it(api, path):
    long = [*messages(2), {"role": "user", "content": "x" * (MAX_CONTENT_CHARS + 1)}]
    message = refused(api(path, {"messages": long}), 400, "message_too_large", MAX_CONTENT_CHARS,
                      MAX_CONTENT_CHARS + 1)
    assert "messages[2].content" in message
    parts = [{"type": "text", "text": "x" * MAX_CONTENT_CHARS}]  # parts are measured as their JSON text
    refused(api(path, {"messages": [{"role": "user", "content": parts}]}), 400, "message_too_large",
            MAX_CONTENT_CHARS)
    at_cap = [{"role": "user", "content": "x" * MAX_CONTENT_CHARS}]
    assert api(path, {"messages": at_cap, "budget": MAX_BUDGET} if path == "/trim" else {"messages": at_cap}
               ).status_code == 200


def test_a_system_prompt_over_the_character_cap_is_400(api):
    message = refused(api("/chat", {"message": "Hi", "system": "x" * (MAX_CONTENT_CHARS + 1)}), 400,
                      "message_too_large", MAX_CONTENT_CHARS, MAX_CONTENT_CHARS + 1)
    assert "'system'" in message


@pytest.mark.parametrize("field", ["budget", "reserve"])
def test_budget_and_reserve_over_the_maximum_are_400_with_the_numbers(api, field):
    over = {"budget": MAX_BUDGET + 1} if field == "budget" else {"budget": MAX_BUDGET, "reserve": MAX_BUDGET + 1}
    message = refused(api("/trim", {"messages": messages(3), **over}), 400, "invalid_field", MAX_BUDGET,
                      MAX_BUDGET + 1)
    assert repr(field) in message
    refused(api("/chat", {"message": "Hi", **over}), 400, "invalid_field", MAX_BUDGET)


def test_a_huge_budget_is_refused_without_echoing_thousands_of_digits(api):
    message = refused(api("/trim", {"messages": messages(3), "budget": 10**400}), 400, "invalid_field", MAX_BUDGET)
    assert "401 digits" in message and len(message) < 300


def test_openapi_states_the_limits():
    document = openapi_document()
    trim = document["paths"]["/api/trim"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert trim["properties"]["messages"]["maxItems"] == MAX_MESSAGES
    assert trim["properties"]["budget"]["maximum"] == MAX_BUDGET
    assert document["components"]["schemas"]["Message"]["properties"]["content"]["maxLength"] == MAX_CONTENT_CHARS
    assert f"{MAX_MESSAGES:,}" in document["paths"]["/api/tokens"]["post"]["responses"]["413"]["description"]
