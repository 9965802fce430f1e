"""The server-side scripts RedisStore runs: one atomic call to open a turn, one to write, one to read.

Why scripts rather than MULTI/EXEC: a write must check before it pushes. redis-py resends a whole
command after a socket timeout, and the first copy may still have run (a server stall longer than the
timeout). Every keyed entry (a message id, a turn record's number) goes into the session's ``ids`` index
with ``ZADD NX`` first, and is pushed only when that added it, so a resent write stores nothing twice; a
resent ``OPEN`` gets its original turn number back. A script runs atomically, touches only the keys it is
given (all in one ``{S}`` hash slot), and so works in a cluster.

What a turn costs (counted by the server, script bodies included; see bench/commands_per_turn.py):
``OPEN`` reads the meta and the new tail of the history, stores the user message with the next turn
number, writes the meta fields the turn sets and refreshes the TTL of every session key: 11 commands, or 12
when the caller's copy of the history misses entries (another writer's) and the tail is read.
``WRITE`` from ``close_turn`` stores the reply and the turn record without refreshing again (``OPEN`` did,
seconds earlier, and every key of the session shares that expiry): 5 commands. A key a closing write has
to create (the first turn record, or a session that expired mid-turn) gets its TTL in the same call.

Keys, in this order: ``SESSION_PARTS``, then ``LEGACY_PARTS`` (a session written by the previous layout is
migrated the first time a script sees it), then the listing index (outside a cluster only).

The store's own fields live in the meta hash under ``store:`` (``get_meta`` leaves them out):
``store:epoch`` (random, set when the session is created; a clear deletes it, so a re-created session
never matches an old cache), ``store:first:<part>`` (the absolute position of the list's head: how many
entries the cap has trimmed so far), ``store:turn_seq`` (the turn counter), ``store:comparisons`` (the
comparisons list exists, so the per-turn refresh includes it).

The ``ids`` scores: a turn's user message scores its turn number (so a resent ``OPEN`` reads its number
back); any other message scores the turn it was stored in plus 0.5; a turn record ``t:<n>`` scores ``n``.
When the cap trims a list, only the ``keep`` highest-scored ids stay: newer than anything the lists hold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

SESSION_PARTS = ("messages", "turns", "comparisons", "meta", "ids")
LEGACY_PARTS = ("state", "message_ids", "turn_ids", "begun")
LIST_PARTS = ("messages", "turns", "comparisons")

_COMMON = """
local M, T, C, META, IDS = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local LIST = {messages = M, turns = T, comparisons = C}
local LEGACY = {epoch = 'store:epoch', turn_seq = 'store:turn_seq', ['messages:first'] = 'store:first:messages',
                ['turns:first'] = 'store:first:turns', ['comparisons:first'] = 'store:first:comparisons'}

-- Copy one id index of the previous layout into ``ids``; ``score(member, old score)`` gives the new score.
local function copy_ids(from, prefix, score)
  local old = redis.call('ZRANGE', from, 0, -1, 'WITHSCORES')
  for i = 1, #old, 2000 do
    local args = {}
    for j = i, math.min(i + 1998, #old - 1), 2 do
      args[#args + 1] = score(old[j], old[j + 1]); args[#args + 1] = prefix .. old[j]
    end
    if #args > 0 then redis.call('ZADD', IDS, unpack(args)) end
  end
end

-- A session of the previous layout (a separate state hash and three id indexes, done once per session):
-- its counters move into meta and its ids into ``ids`` (messages older than anything new, a begun user
-- message scored by its turn number, a record by its own), so nothing stored before is stored twice.
-- Only called when meta exists; ``ids`` takes meta's TTL, so no key is left without one.
local function migrate()
  local old = redis.call('HGETALL', KEYS[6])
  local moved = {}
  for i = 1, #old, 2 do
    local name = LEGACY[old[i]]
    if name then moved[name] = old[i + 1] end
  end
  if #old == 0 then return moved end
  if redis.call('EXISTS', C) == 1 then moved['store:comparisons'] = '1' end
  local flat = {}
  for name, value in pairs(moved) do flat[#flat + 1] = name; flat[#flat + 1] = value end
  if #flat > 0 then redis.call('HSET', META, unpack(flat)) end
  copy_ids(KEYS[7], 'm:', function() return 0 end)
  copy_ids(KEYS[9], 'm:', function(_, turn) return turn end)
  copy_ids(KEYS[8], 't:', function(number) return number end)
  local left = redis.call('PTTL', META)
  if left > 0 then redis.call('PEXPIRE', IDS, left) end
  redis.call('DEL', KEYS[6], KEYS[7], KEYS[8], KEYS[9])
  return moved
end

-- The one place a session's TTL is refreshed: every key of it, and its entry in the listing index.
-- ``mode`` is 'GT' for a write (adds the session) or 'XX' for a read (never adds one). The index is
-- pruned when it grows, so it holds at most the sessions created within one TTL.
local function touch(ttl, now, session_id, use_index, mode, comparisons)
  redis.call('EXPIRE', M, ttl)
  redis.call('EXPIRE', T, ttl)
  redis.call('EXPIRE', META, ttl)
  redis.call('EXPIRE', IDS, ttl)
  if comparisons then redis.call('EXPIRE', C, ttl) end
  if use_index == '1' then
    local added = redis.call('ZADD', KEYS[10], mode, now + ttl, session_id)
    redis.call('EXPIRE', KEYS[10], ttl)
    if added == 1 then redis.call('ZREMRANGEBYSCORE', KEYS[10], '-inf', now) end
  end
end

-- Trim ``list`` to ``cap`` after a push that made it ``len`` long; returns the new head position (or nil).
local function trim(list, part, len, cap, keep)
  if len <= cap then return nil end
  local first = tonumber(redis.call('HGET', META, 'store:first:' .. part) or '0') + len - cap
  redis.call('LTRIM', list, len - cap, -1)
  redis.call('ZREMRANGEBYRANK', IDS, 0, -(keep + 1))
  return first
end
"""

# ARGV: 1 ttl, 2 cap, 3 now, 4 session_id, 5 use_index, 6 new_epoch, 7 known_epoch, 8 known_first,
#       9 known_end, 10 read (1: return the history's new tail), 11 last_turn (1: return the newest turn
#       record), 12 keep, 13 title, 14 message id, 15 message JSON, 16 expected fields (count), then
#       (field, '' when absent or '=' .. value) per expected field, then meta (field, value) pairs.
# Returns {epoch, first, from, entries, meta (flat, as before this call), turn, pushed (0: a resent call;
#          -1: an expected field differs, nothing was written and only ``meta`` is set), newest turn record
#          or '', the list's length right after the push (0: not pushed)}. ``entries`` is the list from
# relative index ``from`` up to the pushed message (all of it when nothing was pushed): ``from`` > 0 only
# when the caller's cache (same epoch, absolute positions known_first..known_end) is still a valid prefix.
# Within one epoch the list only grows at the tail and loses its head to the cap.
OPEN = _COMMON + """
local ttl, cap, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local flat = redis.call('HGETALL', META)
local meta = {}
for i = 1, #flat, 2 do meta[flat[i]] = flat[i + 1] end
if not meta['store:epoch'] and #flat > 0 then
  for name, value in pairs(migrate()) do meta[name] = value end
end
-- The caller decided on these fields (the settings a turn runs with): if one changed since, write nothing.
-- A field already holding what this call sets passes: a resent call finds what its first attempt wrote.
local n_expect = tonumber(ARGV[16])
if n_expect > 0 then
  local sets = {}
  for i = 17 + 2 * n_expect, #ARGV, 2 do sets[ARGV[i]] = ARGV[i + 1] end
  for i = 17, 16 + 2 * n_expect, 2 do
    local value = meta[ARGV[i]]
    local now_is = value and ('=' .. value) or ''
    if now_is ~= ARGV[i + 1] and not (value and sets[ARGV[i]] == value) then
      return {'', 0, 0, {}, flat, 0, -1, '', 0}
    end
  end
end
local epoch = meta['store:epoch']
local first = tonumber(meta['store:first:messages'] or '0')
local from, entries, read = 0, {}, ARGV[10] == '1'
if read then
  local known_first, known_end = tonumber(ARGV[8]), tonumber(ARGV[9])
  if epoch and epoch == ARGV[7] and known_first <= first and known_end >= first then from = known_end - first end
end
local newest = ''
if ARGV[11] == '1' then newest = redis.call('LINDEX', T, -1) or '' end
local set = {'updated_at', ARGV[3]}
local turn, pushed, pushed_len = tonumber(meta['store:turn_seq'] or '0') + 1, 0, 0
local member = 'm:' .. ARGV[14]
if redis.call('ZADD', IDS, 'NX', turn, member) == 1 then
  pushed = 1
  local len = redis.call('RPUSH', M, ARGV[15])
  pushed_len = len
  -- The entries before the message the caller has not read yet (RPUSH gave the length, so a caller whose copy
  -- is current costs no read at all), taken before the cap trims the head.
  if read and from <= len - 2 then entries = redis.call('LRANGE', M, from, len - 2) end
  local trimmed = trim(M, 'messages', len, cap, tonumber(ARGV[12]))
  if trimmed then set[#set + 1] = 'store:first:messages'; set[#set + 1] = trimmed end
  set[#set + 1] = 'store:turn_seq'; set[#set + 1] = turn
else
  if read then entries = redis.call('LRANGE', M, from, -1) end
  local score = tonumber(redis.call('ZSCORE', IDS, member))
  if score >= 1 and score == math.floor(score) then
    turn = score  -- a resent call: the number its first attempt took
  else  -- stored earlier by a plain append: a new number, and the message stays stored once
    redis.call('ZADD', IDS, 'XX', turn, member)
    set[#set + 1] = 'store:turn_seq'; set[#set + 1] = turn
  end
end
if not epoch then epoch = ARGV[6]; set[#set + 1] = 'store:epoch'; set[#set + 1] = epoch end
if not meta['created_at'] then set[#set + 1] = 'created_at'; set[#set + 1] = ARGV[3] end
if ARGV[13] ~= '' and not meta['title'] then set[#set + 1] = 'title'; set[#set + 1] = ARGV[13] end
for i = 17 + 2 * n_expect, #ARGV, 2 do set[#set + 1] = ARGV[i]; set[#set + 1] = ARGV[i + 1] end
redis.call('HSET', META, unpack(set))
touch(ttl, now, ARGV[4], ARGV[5], 'GT', meta['store:comparisons'])
return {epoch, first, from, entries, flat, turn, pushed, newest, pushed_len}
"""

# ARGV: 1 ttl, 2 cap, 3 now, 4 session_id, 5 use_index, 6 new_epoch, 7 full (1: refresh every key; 0: a
#       turn's closing write, see the module docstring), 8 turn (0: the session's counter), 9 keep,
#       10 title, 11 meta fields to set, 12 to delete, 13 messages, 14 turn records, 15 comparisons (counts),
#       then the (field, value) pairs, the deleted fields, (id, JSON) per message, (number, JSON) per turn
#       record (an empty id or number is never deduplicated), and the comparison JSONs.
# Returns {messages length, turns length, comparisons length (-1 for a list not written), full (1/0)}.
WRITE = _COMMON + """
local ttl, cap, now, keep = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[9])
local full, turn = ARGV[7] == '1', tonumber(ARGV[8])
local n_set, n_del = tonumber(ARGV[11]), tonumber(ARGV[12])
local counts = {messages = tonumber(ARGV[13]), turns = tonumber(ARGV[14]), comparisons = tonumber(ARGV[15])}
local set, state = {}, {}

-- What a write that refreshes everything needs to know; also run when a closing write finds the session gone.
local function init()
  local s = redis.call('HMGET', META, 'store:epoch', 'store:turn_seq', 'updated_at', 'created_at', 'title',
                       'store:comparisons')
  if not s[1] and s[3] then
    local moved = migrate()
    s[1], s[2], s[6] = moved['store:epoch'], moved['store:turn_seq'], moved['store:comparisons']
  end
  if not s[1] then set[#set + 1] = 'store:epoch'; set[#set + 1] = ARGV[6] end
  if not s[4] then set[#set + 1] = 'created_at'; set[#set + 1] = ARGV[3] end
  state.seq, state.title, state.comparisons = tonumber(s[2] or '0'), s[5], s[6]
end

if full then init() end
if turn == 0 then turn = state.seq or tonumber(redis.call('HGET', META, 'store:turn_seq') or '0') end
local lengths, pushed = {messages = -1, turns = -1, comparisons = -1}, {messages = 0, turns = 0, comparisons = 0}
local i = 16 + 2 * n_set + n_del
for _, part in ipairs({'messages', 'turns', 'comparisons'}) do
  local list, len = LIST[part], nil
  for _ = 1, counts[part] do
    local key, entry = '', ARGV[i]
    if part ~= 'comparisons' then key, entry = ARGV[i], ARGV[i + 1]; i = i + 1 end
    i = i + 1
    local fresh = true
    if key ~= '' then
      local member, score = 'm:' .. key, turn + 0.5
      if part == 'turns' then member, score = 't:' .. key, tonumber(key) end
      fresh = redis.call('ZADD', IDS, 'NX', score, member) == 1
    end
    if fresh then len = redis.call('RPUSH', list, entry); pushed[part] = pushed[part] + 1 end
  end
  if counts[part] > 0 then
    len = len or redis.call('LLEN', list)
    local trimmed = trim(list, part, len, cap, keep)
    if trimmed then set[#set + 1] = 'store:first:' .. part; set[#set + 1] = trimmed; len = cap end
    lengths[part] = len
  end
end
if pushed.comparisons > 0 then set[#set + 1] = 'store:comparisons'; set[#set + 1] = '1'; state.comparisons = '1' end

if not full then
  -- Inside a turn: OPEN refreshed every key moments ago, and they share one expiry, so a list that already
  -- existed proves the session alive. A list created now gets its TTL; a session found gone is set up again.
  local function created(part) return pushed[part] > 0 and lengths[part] <= pushed[part] end
  if created('messages') then
    full = true
    init()
  elseif created('turns') or created('comparisons') then
    if pushed.messages > 0 or redis.call('EXISTS', META) == 1 then
      for _, part in ipairs({'turns', 'comparisons'}) do
        if created(part) then redis.call('EXPIRE', LIST[part], ttl) end
      end
    else
      full = true
      init()
    end
  end
end
if full or n_set > 0 then set[#set + 1] = 'updated_at'; set[#set + 1] = ARGV[3] end
if full and ARGV[10] ~= '' and not state.title then set[#set + 1] = 'title'; set[#set + 1] = ARGV[10] end
for j = 16, 15 + 2 * n_set do set[#set + 1] = ARGV[j] end
if #set > 0 then redis.call('HSET', META, unpack(set)) end
if n_del > 0 then redis.call('HDEL', META, unpack(ARGV, 16 + 2 * n_set, 15 + 2 * n_set + n_del)) end
if full then touch(ttl, now, ARGV[4], ARGV[5], 'GT', state.comparisons) end
return {lengths.messages, lengths.turns, lengths.comparisons, full and 1 or 0}
"""

# ARGV: 1 part, 2 known_epoch, 3 known_first, 4 known_end, 5 ttl (0: no refresh), 6 now, 7 session_id, 8 use_index.
# Returns {epoch, first, from, entries} as OPEN does, for any list.
READ = _COMMON + """
local list = LIST[ARGV[1]]
local s = redis.call('HMGET', META, 'store:epoch', 'store:first:' .. ARGV[1], 'updated_at', 'store:comparisons')
if not s[1] and s[3] then
  local moved = migrate()
  s[1], s[2], s[4] = moved['store:epoch'], moved['store:first:' .. ARGV[1]], moved['store:comparisons']
end
local epoch, first = s[1] or '', tonumber(s[2] or '0')
local known_first, known_end = tonumber(ARGV[3]), tonumber(ARGV[4])
local from = 0
if epoch ~= '' and epoch == ARGV[2] and known_first <= first and known_end >= first then from = known_end - first end
local entries = redis.call('LRANGE', list, from, -1)
if tonumber(ARGV[5]) > 0 and epoch ~= '' then
  touch(tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7], ARGV[8], 'XX', s[4])
end
return {epoch, first, from, entries}
"""

# The seconds left before the session expires (its keys share one expiry): meta first, which every store
# write keeps; -2 when no key exists. Returns the largest TTL seen when no key has a positive one.
TTL = """
local best = -2
for _, i in ipairs({4, 1, 2, 5, 3}) do
  local left = redis.call('TTL', KEYS[i])
  if left > 0 then return left end
  if left > best then best = left end
end
return best
"""


def write_args(common: Sequence[Any], *, full: bool, turn: int, keep: int, title: str,
               meta: Mapping[str, str | None], messages: Sequence[tuple[str | None, str]],
               turns: Sequence[tuple[str | None, str]], comparisons: Sequence[str]) -> list[Any]:
    """WRITE's ARGV (``common`` is its first six); in ``meta`` a None value deletes the field."""
    set_fields = [(name, value) for name, value in meta.items() if value is not None]
    deleted = [name for name, value in meta.items() if value is None]
    args = [*common, int(full), turn, keep, title, len(set_fields), len(deleted), len(messages), len(turns),
            len(comparisons)]
    for name, value in set_fields:
        args += [name, value]
    args += deleted
    for key, entry in [*messages, *turns]:
        args += [key or "", entry]
    return [*args, *comparisons]


def open_args(common: Sequence[Any], *, known: tuple[str, int, int], read: bool, newest_record: bool, keep: int,
              title: str, message: tuple[str, str], meta: Mapping[str, str],
              expect: Mapping[str, str | None] | None = None) -> list[Any]:
    """OPEN's ARGV: ``known`` is the caller's cached (epoch, first, end); ``message`` its (id, JSON); ``expect``
    the meta values (None: absent) the call must find (or the value ``meta`` sets), or it writes nothing."""
    expected = dict(expect or {})
    args = [*common, *known, int(read), int(newest_record), keep, title, *message, len(expected)]
    for name, value in expected.items():
        args += [name, "" if value is None else "=" + value]
    for name, value in meta.items():
        args += [name, value]
    return args
