"""The offline model's report of what it could see, kept beside the reply and never inside it.

The report says how many messages and tokens it received, the oldest turn it can see, which turns were
trimmed (or summarised) and the summary it was given, plus what its answer was based on. It travels as
``Reply.report``, is stored in the reply's metadata (``ReplyMeta.report``) and drawn under the reply, so
the next payload re-sends only the answer, as with any real model.
"""

from __future__ import annotations

from collections.abc import Sequence

from lib.core import turns_text
from lib.providers.offline_view import Coverage, Seen, plural, turn_span

REPORT_LABEL = "What the offline model could see (its own report: kept with the reply, never re-sent)"
FORGOT_PHRASE = "I can no longer see your first message"
WHOLE_PHRASE = "Nothing was trimmed; I can see the whole conversation."
MAX_REPORT_LINES = 10


def report_lines(seen: Sequence[Seen], cover: Coverage, *, tokens: tuple[int, bool], window: int | None,
                 flags: Sequence[str] = (), basis: str | None = None, tools: Sequence[str] = ()) -> tuple[str, ...]:
    """One sentence per fact about the payload, each true of it (``tools``: the names of the definitions)."""
    lines = [_received(seen, tokens, window, tools), _oldest(cover), _trimmed(cover),
             *(_summary_note(s) for s in seen), *flags]
    if basis:
        lines.append(f"My answer: {basis}.")
    return tuple(line for line in lines if line)[:MAX_REPORT_LINES]


def _received(seen: Sequence[Seen], counted: tuple[int, bool], window: int | None, tools: Sequence[str]) -> str:
    tokens, exact = counted
    size = f"{tokens:,} tokens" if exact else f"about {tokens:,} tokens, estimated"
    if window is not None:
        size += f" of my {window:,}-token context window"
    roles: dict[str, int] = {}
    for s in seen:
        roles[s.role] = roles.get(s.role, 0) + 1
    mix = ", ".join(f"{n} {role}" for role, n in roles.items())
    offered = (f", and {plural(len(tools), 'tool definition')} ({', '.join(tools)}; I may not call them: "
               "tool_choice is none)") if tools else ""
    return f"I received {plural(len(seen), 'message')} ({size}): {mix}{offered}."


def _oldest(cover: Coverage) -> str:
    oldest = cover.oldest
    if oldest is None:
        return "There is no message from you in my payload."
    if oldest.turn is None:
        return (f"The oldest message I can see is a {oldest.role} message. I was not told turn numbers, so I "
                "cannot say which turn it belongs to or whether earlier turns were trimmed.")
    return f"The oldest message I can see is the {oldest.role} message of turn {oldest.turn}."


def _trimmed(cover: Coverage) -> str:
    if not cover.known:
        return ""
    sentences = []
    if cover.lost:
        verb = "was" if cover.lost == 1 else "were"
        how = "replaced by the summary I was given" if cover.summarised else "trimmed away before this request"
        sentences.append(f"{FORGOT_PHRASE}: {plural(cover.lost, 'earlier turn')} ({turn_span(1, cover.lost)}) "
                         f"{verb} {how}.")
    elif 1 in cover.headless:
        sentences.append(f"{FORGOT_PHRASE}: it was trimmed away, and only later messages of turn 1 remain.")
    if cover.gaps:
        sentences.append(f"{turns_text(cover.gaps).capitalize()} {'is' if len(cover.gaps) == 1 else 'are'} "
                         "missing from the middle of my payload.")
    partial = [t for t in cover.headless if t != 1 or cover.lost]
    if partial:
        sentences.append(f"Of {turns_text(partial)} I see only later messages: the user message that began "
                         f"{'it' if len(partial) == 1 else 'each'} was trimmed.")
    return " ".join(sentences) or WHOLE_PHRASE


def _summary_note(seen: Seen) -> str:
    if seen.summary is None:
        return ""
    return (f"I can see a summary of {turn_span(*seen.summary)} (a {seen.role} message), "
            "not those turns themselves.")
