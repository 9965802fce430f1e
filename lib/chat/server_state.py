"""Server-side history for one chat turn: which chain a turn may use, and what to do when it is broken.

A provider with ``capabilities.server_side_history`` (the Responses API) can hold the conversation itself, so
a turn sends only the new input. Two ways, chosen per turn with ``TurnRequest.server_state``:

- ``"previous_response"``: chain on the previous response id (kept in session meta);
- ``"conversation"``: a Conversations API object (its id kept in session meta, created on first use).

A chain is only valid while the newest stored reply is the one it produced: when another provider answered
in between, the server's copy misses messages. Then the turn says so (a note in its record) and re-sends the
whole history: without ``previous_response_id``, or into a new conversation seeded with the history. The same
happens when the server has forgotten the state (``ServerStateLost``, an expired conversation), within the turn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from lib.core import TurnRecord, mask_secrets, mask_then_cut
from lib.providers import BadRequest, Provider, ProviderError, Reply, ServerStateLost
from lib.sessions import SessionStore

ServerState = Literal["previous_response", "conversation"]
# Session meta: the chain and the assistant message that ends it (the chain is valid while it is the newest).
META_PREVIOUS_RESPONSE = "previous_response_id"
META_PREVIOUS_RESPONSE_MESSAGE = "previous_response_message_id"
META_CONVERSATION = "conversation_id"
META_CONVERSATION_MESSAGE = "conversation_message_id"
Message = Mapping[str, Any]


@runtime_checkable
class ConversationProvider(Protocol):
    """A provider that can open a Conversations API object (lib.providers.openai_responses)."""

    def create_conversation(self, messages: Sequence[Message] = ()) -> str: ...


@dataclass(frozen=True)
class ServerChain:
    """What a turn chains on. ``live``: only the new input goes out; otherwise the whole history does.

    ``seed``: the conversation must be (re)created holding the history before the new message is sent.
    """

    mode: ServerState | None = None
    previous_response_id: str | None = None
    conversation_id: str | None = None
    live: bool = False
    seed: bool = False
    note: str | None = None


def chain_for(provider: Provider, mode: ServerState | None, meta: Mapping[str, str],
              history: Sequence[Message]) -> ServerChain:
    """The chain this turn may use, from the session meta and the newest stored message."""
    if mode is None or not provider.capabilities.server_side_history:
        return ServerChain()
    newest = history[-1].get("id") if history else None
    if mode == "conversation":
        conversation = meta.get(META_CONVERSATION)
        if conversation and newest and newest == meta.get(META_CONVERSATION_MESSAGE):
            return ServerChain(mode, conversation_id=conversation, live=True)
        note = None
        if conversation:
            note = (f"The conversation {conversation} no longer matches the stored history (another provider "
                    "answered in between): a new conversation was started and the whole history re-sent.")
        return ServerChain(mode, seed=True, note=note)
    response = meta.get(META_PREVIOUS_RESPONSE)
    if not response or not history:
        return ServerChain(mode)
    if newest == meta.get(META_PREVIOUS_RESPONSE_MESSAGE):
        return ServerChain(mode, previous_response_id=response, live=True)
    return ServerChain(mode, note=f"The server-side chain is broken (another provider answered after response "
                                  f"{response}): the whole history was re-sent.")


def open_conversation(provider: Provider, history: Sequence[Message]) -> tuple[str | None, str | None]:
    """A new conversation holding ``history`` (the system prompt stays out: it goes as instructions).

    Returns (conversation id, None), or (None, a note) when the provider cannot or the call failed: the
    turn then re-sends the history without server state instead of failing.
    """
    if not isinstance(provider, ConversationProvider):
        return None, f"{provider.label or provider.name} has no Conversations API: the whole history was re-sent."
    try:
        return provider.create_conversation([m for m in history if m.get("role") not in ("system", "developer")]), None
    except ProviderError as exc:
        return None, (f"Creating a conversation failed ({mask_secrets(str(exc))}): the whole history was re-sent "
                      "without server-side state.")


def state_lost(exc: BaseException, *, conversation: bool) -> bool:
    """The server forgot what the request chained on (an unknown response, an expired conversation)."""
    if isinstance(exc, ServerStateLost):
        return True
    # An expired or deleted conversation is a plain 404 (no error code), unlike previous_response_not_found.
    return conversation and isinstance(exc, BadRequest) and exc.status == 404


def lost_note(exc: BaseException, chain: ServerChain) -> str:
    what = f"conversation {chain.conversation_id}" if chain.conversation_id else \
        f"response {chain.previous_response_id}"
    return (f"The server no longer holds the {what} ({mask_then_cut(str(exc), 200)}): the whole history was "
            "re-sent in this turn.")


def remember_chain(store: SessionStore, session_id: str, *, mode: ServerState | None, reply: Reply,
                   assistant_id: str) -> None:
    """Keep what the next turn chains on: the response id (or conversation) and the reply it ends with."""
    if mode == "conversation" and reply.conversation_id:
        store.set_meta(session_id, **{META_CONVERSATION: reply.conversation_id,
                                      META_CONVERSATION_MESSAGE: assistant_id})
    elif reply.response_id:
        store.set_meta(session_id, **{META_PREVIOUS_RESPONSE: reply.response_id,
                                      META_PREVIOUS_RESPONSE_MESSAGE: assistant_id})


def describe_server_context(reply: Reply) -> tuple[str, ...]:
    """What the server did to the context, in words for the record (bounded by the record itself)."""
    out = []
    for item in reply.server_context:
        detail = ", ".join(f"{k} {v}" for k, v in item.detail.items() if isinstance(v, str | int))
        out.append(f"{item.kind} ({detail})" if detail else item.kind)
    return tuple(out)


def held_by_chain(store: SessionStore, session_id: str, history: Sequence[Message],
                  positions: Mapping[str, int]) -> list[str]:
    """The stored messages a live chain holds on the server: the previous request's context (what it sent and
    what its server held) and its reply. A chain is live only while that reply is the newest stored message,
    so the newest record is the one it continues."""
    newest = store.get_turns(session_id, -1)
    if not newest:
        return []
    previous = TurnRecord.from_json(newest[-1])
    held = {*previous.sent_ids(history, positions), *previous.server_held_ids(history, positions)}
    if previous.assistant_id and previous.assistant_id in positions:
        held.add(previous.assistant_id)
    return sorted(held, key=positions.__getitem__)
