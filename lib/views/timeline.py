"""The payload timeline: what every turn re-sent, message by message, as plain data (no streamlit).

    timeline = build_timeline(history, turns, meta=store.get_meta(sid), reference_model="gpt-4o-mini")
    row = timeline.row(5)                  # TurnRow: tokens, diff, cache, cost, badges of turn 5
    timeline.blocks(5)                     # one Block per payload message: role, exact tokens, new, cached
    timeline.dropped_blocks(5)             # the stored messages turn 5 did not send (greyed)
    timeline.request_body(5)               # TurnBody: the body sent, rebuilt by its adapter (never a key)
    timeline.changes(5)                    # the messages added and removed since turn 4

Badges and cost formatting live in lib.views.badges (``turn_badges(row)``, ``format_cost(usd)``).

Linear time: a row keeps its payload as a few runs of history positions (from the record's id ranges) and
its token figures come from prefix sums of per-message counts (counted once per message and encoding, and
cached by lib.tokens.counting), so rows, diffs and badges cost O(1) per turn. The one per-message step is the cache
replay (lib.views.timeline_cache), which hands each payload to lib.costs.cache_model's PromptCache: O(messages sent), so
bounded by the budget once a session trims. Blocks are made on demand, for the turns drawn.

Where each figure comes from is part of the data: token counts carry lib.tokens.counting' ``count_label``; the
cached prefix is the provider-reported cache read when the record has one (the offline model's is
simulated, and labelled so) and otherwise lib.costs.cache_model's simulation with the profile of the turn's
provider; the cache status compares each payload with the previous one (lib.views.timeline_cache).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from lib.chat import TurnBody, turn_body
from lib.context import Summary, per_message_counts
from lib.core import Price, ReplyMeta, TurnRecord, id_positions, safe_title
from lib.costs import PROFILES
from lib.tokens import ESTIMATE_LABEL, count_label, message_tokens, reply_priming
from lib.views.badges import turn_badges
from lib.views.rows import Badge, Block, Run, TurnDiff, TurnRow, union_runs
from lib.views.timeline_cache import CacheView, SessionCache, cache_profile_for

__all__ = ["Badge", "Block", "CacheView", "Timeline", "TurnBody", "TurnDiff", "TurnRow", "build_timeline",
           "cache_profile_for"]
Message = Mapping[str, Any]
PREVIEW = 60


@dataclass
class _Counts:
    """Per-message tokens of the history in one encoding, with prefix sums."""

    tokens: list[int]
    prefix: list[int]
    source: str

    def span(self, runs: Sequence[Run]) -> int:
        return sum(self.prefix[b] - self.prefix[a] for a, b in runs)


@dataclass
class Timeline:
    """Every turn's row plus what is needed to draw its blocks and rebuild its request on demand."""

    rows: list[TurnRow]
    history: Sequence[Message]
    meta: Mapping[str, str]
    message_turns: list[int]
    total_cost: float = 0.0
    unpriced_turns: int = 0
    _counts: dict[str, _Counts] = field(default_factory=dict, repr=False)
    _by_turn: dict[int, int] = field(default_factory=dict, repr=False)
    _previews: dict[int, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_turn = {row.turn: n for n, row in enumerate(self.rows)}

    @property
    def turns(self) -> list[int]:
        return [row.turn for row in self.rows]

    def row(self, turn: int) -> TurnRow:
        if turn not in self._by_turn:
            raise KeyError(f"No turn {turn} in this session; choose one of {self.turns[:1]}…{self.turns[-1:]}")
        return self.rows[self._by_turn[turn]]

    def previous(self, turn: int) -> TurnRow | None:
        n = self._by_turn.get(turn, 0)
        return self.rows[n - 1] if n > 0 else None

    def blocks(self, turn: int) -> list[Block]:
        """The payload's blocks in the order the provider renders them: the tool definitions and the system
        prompt (in the provider's order, ``TurnRow.tools_first``), the summary, then the stored messages."""
        row = self.row(turn)
        counts = _counts_for(self._counts, self.history, row.record)
        cached = row.cache.cached_messages
        blocks: list[Block] = []
        for kind, _, tokens in _front(row):
            index = len(blocks)
            if kind == "tools":
                names = ", ".join(row.record.tool_names)
                blocks.append(Block(index, "tools", "tools", tokens, None, 0, new=row.new_tools, cached=cached > index,
                                    preview=safe_title(f"tool definitions: {names}", limit=PREVIEW)))
            elif kind == "system":
                blocks.append(Block(index, "system", "system", tokens, None, 0, new=row.new_system,
                                    cached=cached > index, preview=safe_title(row.system or "", limit=PREVIEW)))
            elif row.summary is not None:
                s = row.summary
                blocks.append(Block(index, "summary", "summary", tokens, s.id, s.last_turn, new=row.new_summary,
                                    cached=cached > index, preview=safe_title(s.label, limit=PREVIEW)))
        for position in _positions(row.runs):
            index = len(blocks)
            blocks.append(self._block(position, index, counts, new=not _inside(position, row.previous_runs),
                                      cached=index < cached, pinned=_inside(position, row.pinned_runs)))
        return blocks

    def dropped_blocks(self, turn: int) -> list[Block]:
        """The stored messages this turn did not send: trimmed, or left out by hand (``left_out``)."""
        row = self.row(turn)
        counts = _counts_for(self._counts, self.history, row.record)
        return [self._block(p, -1, counts, dropped=True, left_out=_inside(p, row.left_out_runs))
                for p in _positions(row.dropped_runs)]

    def dropped_tokens(self, turn: int) -> int:
        """Tokens of every stored message not sent, left-out ones included."""
        row = self.row(turn)
        return _counts_for(self._counts, self.history, row.record).span(row.dropped_runs)

    def left_out_tokens(self, turn: int) -> int:
        """Tokens of the stored messages left out by hand (a part of ``dropped_tokens``)."""
        row = self.row(turn)
        return _counts_for(self._counts, self.history, row.record).span(row.left_out_runs)

    def pinned_tokens(self, turn: int) -> int:
        row = self.row(turn)
        return _counts_for(self._counts, self.history, row.record).span(row.pinned_runs)

    def request_body(self, turn: int) -> TurnBody:
        """The turn's request body, rebuilt through the adapter that sent it (none when no request was made)."""
        row = self.row(turn)
        return turn_body(row.record, self.history, self.meta, summary=row.summary)

    def changes(self, turn: int) -> tuple[list[Block], list[Block]]:
        """The blocks new in this payload, and the messages the previous payload sent that this one did not."""
        row = self.row(turn)
        added = [b for b in self.blocks(turn) if b.new]
        counts = _counts_for(self._counts, self.history, row.record)
        removed = [self._block(p, -1, counts, dropped=True) for p in _positions(row.previous_runs)
                   if not _inside(p, row.context_runs)]
        return added, removed

    def _block(self, position: int, index: int, counts: _Counts, *, new: bool = False, cached: bool = False,
               dropped: bool = False, pinned: bool = False, left_out: bool = False) -> Block:
        message = self.history[position]
        preview = self._previews.get(position)
        if preview is None:  # one preview per message, however many turns draw it
            content = message.get("content", "")
            # Cut before cleaning: safe_title reads the whole text, and a pasted file may be 500k characters.
            head = content[: PREVIEW * 4] if isinstance(content, str) else content
            preview = self._previews[position] = safe_title(head, limit=PREVIEW)
        return Block(index, "message", str(message.get("role", "?")), counts.tokens[position], _id(message),
                     self.message_turns[position], new=new, cached=cached, dropped=dropped, preview=preview,
                     pinned=pinned, left_out=left_out)


# -- building ------------------------------------------------------------------------------------------------


def build_timeline(
    history: Sequence[Message],
    turns: Sequence[Mapping[str, Any] | TurnRecord],
    *,
    meta: Mapping[str, str] | None = None,
    summaries: Sequence[Summary] = (),
    reference_model: str | None = None,
    prices: Mapping[str, Price] | None = None,
) -> Timeline:
    """The timeline of a session from its stored history, turn records and meta.

    ``summaries``: stored summaries (lib.context.compaction.Summary) a record's ``summary_id`` may name; summaries
    stored as JSON in ``meta`` under a key starting with "summary" are found too. ``reference_model``: the
    model the offline model is priced and cached as (the sidebar's choice).
    """
    meta = meta or {}
    history = [m for m in history if isinstance(m, Mapping)]
    records = sorted((t if isinstance(t, TurnRecord) else TurnRecord.from_json(t) for t in turns),
                     key=lambda r: r.turn or 0)
    positions = id_positions(history)
    known = _summaries(meta, summaries)
    counts: dict[str, _Counts] = {}
    session_cache = SessionCache(history, reference_model=reference_model, prices=prices)
    rows: list[TurnRow] = []
    running = 0.0
    unpriced = 0
    previous: TurnRow | None = None  # the last turn that made a request: a refused one changed nothing
    message_turns = _message_turns(history, records)
    for number, record in enumerate(records, start=1):
        row = _row(record, history, meta, positions, known, previous, counts, turn=record.turn or number)
        row = replace(row, tools_first=PROFILES[cache_profile_for(record, reference_model)[0]].tools_first)
        cache = session_cache.view(record, head=_head(row), runs=row.runs,
                                   tokens=_counts_for(counts, history, record).tokens)
        row = replace(row, cache=cache)
        row = replace(row, cache_reason=cache_reason(row, previous, message_turns))
        previous = row if row.made_request else previous
        cost, source = _cost(record, history, positions)
        extra = row.summary.cost if row.new_summary and row.summary and row.summary.cost else 0.0
        if cost is None and not record.failed and not record.not_sent:
            unpriced += 1
        running += (cost or 0.0) + extra
        row = replace(row, cost=cost, cost_source=source, running_total=running)
        rows.append(replace(row, badges=tuple(turn_badges(row))))
    return Timeline(rows, history, meta, message_turns, running, unpriced, counts)


def _row(
    record: TurnRecord, history: Sequence[Message], meta: Mapping[str, str], positions: Mapping[str, int],
    summaries: Mapping[str, Summary], previous: TurnRow | None, counts: dict[str, _Counts], *, turn: int,
) -> TurnRow:
    runs, dropped = _runs(record.sent, positions), _runs(record.dropped, positions)
    system = record.system_text(meta)
    summary = summaries.get(record.summary_id) if record.summary_id else None
    table = _counts_for(counts, history, record)
    model = _model(record)
    tokens = table.span(runs) + reply_priming(model) + (summary.tokens if summary else 0) + (record.tool_tokens or 0)
    if system is not None:
        tokens += message_tokens({"role": "system", "content": system}, model)
    if record.not_sent or (record.failed and not record.sent_count):
        tokens = 0  # nothing was sent (the message alone was over the budget)
    if record.not_sent:  # no request: nothing to compare, and it is no one's "previous request"
        return TurnRow(turn=turn, record=record, system=None, summary=None, runs=(), dropped_runs=(),
                       previous_runs=(), new_system=False, new_summary=False, tokens=0, count_source=table.source,
                       diff=TurnDiff(made=False), cache=CacheView(), cost=None, cost_source="", running_total=0.0)
    before_system = previous.system if previous else None
    before_summary = previous.summary if previous else None
    previous_runs = previous.context_runs if previous else ()
    server_runs = _server_runs(record, previous, positions) if record.server_kept else ()
    context = union_runs(runs, server_runs)
    new_system = system is not None and system != before_system
    new_summary = summary is not None and summary != before_summary
    before_tools = previous.record.tools_hash if previous else None
    new_tools = record.tools_hash is not None and record.tools_hash != before_tools
    diff = TurnDiff(
        added=_outside(runs, previous_runs) + int(new_system) + int(new_summary) + int(new_tools),
        removed=_outside(previous_runs, context) + int(before_system is not None and system != before_system)
        + int(before_summary is not None and summary != before_summary)
        + int(before_tools is not None and record.tools_hash != before_tools),
        tokens=tokens - (previous.tokens if previous else 0),
        kept_by_server=sum(b - a for a, b in server_runs) if record.server_kept else None,
    )
    return TurnRow(
        turn=turn, record=record, system=system, summary=summary, runs=runs, dropped_runs=dropped,
        previous_runs=previous_runs, new_system=new_system, new_summary=new_summary, tokens=tokens,
        count_source=table.source, diff=diff, cache=CacheView(), cost=None, cost_source="", running_total=0.0,
        server_runs=server_runs,
        pinned_runs=_runs(record.pinned, positions), left_out_runs=_runs(record.left_out, positions),
        new_tools=new_tools,
    )


def _server_runs(record: TurnRecord, previous: TurnRow | None, positions: Mapping[str, int]) -> tuple[Run, ...]:
    """What the server held for a turn that chained on it: as its record says, or for a record written before
    records said it, the previous request's whole context and its reply (a chain is only used while that
    reply is the newest stored message, lib.server_state)."""
    if record.server_held:
        return union_runs(_runs(record.server_held, positions))
    if previous is None:
        return ()
    reply = positions.get(previous.record.assistant_id or "")
    return union_runs(previous.context_runs, ((reply, reply + 1),) if reply is not None else ())


def _front(row: TurnRow) -> list[tuple[str, Message, int]]:
    """What is sent before the stored messages, in the provider's order, with tokens: the tool definitions
    and the system prompt (tools first for Anthropic, after the system prompt for OpenAI), then the summary."""
    front: list[tuple[str, Message, int]] = []
    if row.record.tools_hash:
        # Its rendered form, for the cache, is the hash: equal hashes, byte-identical definitions.
        front.append(("tools", {"role": "tools", "content": row.record.tools_hash}, row.record.tool_tokens or 0))
    if row.system is not None:
        system = {"role": "system", "content": row.system}
        front.insert(0 if not row.tools_first else len(front),
                     ("system", system, message_tokens(system, _model(row.record))))
    if row.summary is not None:
        front.append(("summary", row.summary.message(), row.summary.tokens))
    return front


def _head(row: TurnRow) -> list[tuple[Message, int]]:
    """The front of the payload (tools, system prompt, summary) as the cache replay takes it."""
    return [(message, tokens) for _, message, tokens in _front(row)]


def _model(record: TurnRecord) -> str:
    return record.model or "gpt-4o-mini"


def _counts_for(cache: dict[str, _Counts], history: Sequence[Message], record: TurnRecord) -> _Counts:
    """Per-message counts in the encoding of the record's model, computed once per encoding."""
    model = _model(record)
    label = count_label("tiktoken", model=model)
    if label not in cache:
        tokens, encoding = per_message_counts(history, model)
        source = ESTIMATE_LABEL if encoding == "chars/4" else label
        cache[label] = _Counts(tokens, list(itertools.accumulate(tokens, initial=0)), source)
    return cache[label]


def _runs(ranges: Sequence[tuple[str, str]], positions: Mapping[str, int]) -> tuple[Run, ...]:
    """A record's id ranges as runs of history positions; a range whose first id the store's cap removed
    starts at the beginning of the history (as lib.core.ranges.resolve_ranges does), one whose last id is gone
    is gone."""
    runs: list[Run] = []
    for first, last in ranges:
        stop = positions.get(last)
        if stop is not None:
            runs.append((positions.get(first, 0), stop + 1))
    return tuple(r for r in runs if r[0] < r[1])


def _positions(runs: Sequence[Run]) -> Iterator[int]:
    for start, stop in runs:
        yield from range(start, stop)


def _inside(position: int, runs: Sequence[Run]) -> bool:
    return any(a <= position < b for a, b in runs)


def _outside(runs: Sequence[Run], other: Sequence[Run]) -> int:
    """How many positions of ``runs`` are not in ``other`` (each is a handful of disjoint runs)."""
    return sum((b - a) - sum(max(0, min(b, d) - max(a, c)) for c, d in other) for a, b in runs)


def _id(message: Message) -> str | None:
    value = message.get("id")
    return value if isinstance(value, str) else None


def _message_turns(history: Sequence[Message], records: Sequence[TurnRecord]) -> list[int]:
    """The turn of every stored message: a user message's record names it, the rest follow their user."""
    by_user = {r.user_id: r.turn for r in records if r.user_id and r.turn}
    number, out = 0, []
    for message in history:
        if message.get("role") == "user":
            number = by_user.get(_id(message) or "") or number + 1
        out.append(number)
    return out


def _summaries(meta: Mapping[str, str], given: Sequence[Summary]) -> dict[str, Summary]:
    found = {s.id: s for s in given}
    for name, value in meta.items():
        if name.startswith("summary") and isinstance(value, str) and value.startswith("{"):
            try:
                summary = Summary.from_json(json.loads(value))
            except ValueError:
                continue
            if summary is not None:
                found.setdefault(summary.id, summary)
    return found


# -- cost and badges -----------------------------------------------------------------------------------------


def cache_reason(row: TurnRow, previous: TurnRow | None, message_turns: Sequence[int]) -> str | None:
    """Why this payload's prefix differs from the previous one, when the cache broke: what changed first."""
    if row.cache.status != "broken" or previous is None:
        return None
    reasons = []
    if row.record.tools_hash != previous.record.tools_hash:
        reasons.append("the tool definitions changed" if row.record.tools_hash and previous.record.tools_hash
                       else "tool definitions were added" if row.record.tools_hash else "tool definitions removed")
    if row.system != previous.system:
        reasons.append("the system prompt changed")
    if row.summary != previous.summary:
        reasons.append("a new summary replaced old turns" if row.summary else "the summary was dropped")
    was_sent = set(_positions(previous.runs))
    left = {message_turns[p] for p in _positions(row.left_out_runs) if p in was_sent}
    if left:
        reasons.append(f"{_turn_words(left)} left out by you")
    gone = was_sent - set(_positions(row.runs)) - set(_positions(row.left_out_runs))
    if gone:
        reasons.append(f"{_turn_words({message_turns[p] for p in gone})} trimmed")
    last = max(was_sent, default=-1)
    back = {message_turns[p] for p in _positions(row.runs) if p not in was_sent and p < last}
    if back:
        reasons.append(f"{_turn_words(back)} sent again")
    return "; ".join(reasons) or None


def _turn_words(turns: set[int]) -> str:
    ordered = sorted(turns)
    shown = ", ".join(map(str, ordered[:6])) + (f" and {len(ordered) - 6} more" if len(ordered) > 6 else "")
    return f"turn {shown}" if len(ordered) == 1 else f"turns {shown}"


def _cost(record: TurnRecord, history: Sequence[Message], positions: Mapping[str, int]) -> tuple[float | None, str]:
    if record.not_sent:
        return None, "no cost: no request was made"
    if record.failed:
        return None, "not billed: the request failed"
    source = None
    if record.assistant_id and record.assistant_id in positions:
        source = ReplyMeta.from_json(history[positions[record.assistant_id]].get("meta")).cost_source
    if record.cost is None:
        return None, source or "no usage reported"
    return record.cost, f"estimate, {source}" if source else "estimate"
