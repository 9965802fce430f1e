"""The server-side scripts RedisStore runs: one atomic call per append and per read.

Why scripts rather than MULTI/EXEC: a write must check before it pushes. redis-py resends a whole
command after a socket timeout, and the first copy may still have run (a server stall longer than the
timeout). The append script skips any entry whose id is already in the session's id index, so a resent
append stores nothing twice; a resent ``begin_turn`` gets its original turn number back. A script runs
atomically, touches only the keys it is given (all in one ``{S}`` hash slot), and so works in a cluster.

Every session key is passed in ``SESSION_PARTS`` order; the index key (outside a cluster) comes last.
State hash fields: ``epoch`` (random, set when the session is created; a clear deletes it, so a
re-created session never matches an old cache), ``<part>:first`` (the absolute position of the list's
head: how many entries the cap has trimmed so far), ``turn_seq`` (the turn counter).
"""

from __future__ import annotations

# Positions (1-based, as in Lua) of each key in KEYS.
SESSION_PARTS = ("messages", "turns", "comparisons", "meta", "state", "message_ids", "turn_ids", "begun")
LIST_PARTS = {"messages": "message_ids", "turns": "turn_ids", "comparisons": None}


def key_position(part: str | None) -> int:
    """1-based KEYS position of a part, 0 for None (the script then skips that step)."""
    return 0 if part is None else SESSION_PARTS.index(part) + 1


# Shared by both scripts: EXPIRE every session key, then keep the listing index (when given) in step.
_TOUCH = """
local function touch(ttl, now, session_id, use_index, ...)
  for i = 1, 8 do redis.call('EXPIRE', KEYS[i], ttl) end
  if use_index == '1' then
    redis.call('ZADD', KEYS[9], ..., now + ttl, session_id)
    redis.call('EXPIRE', KEYS[9], ttl)
  end
end
"""

# ARGV: list_pos ids_pos ttl cap now epoch title begin session_id use_index begun_window part, then
# (key, entry) pairs; an empty key is never deduplicated.
# Returns {turn number or 0, new list length}.
APPEND = _TOUCH + """
local list, ids = KEYS[tonumber(ARGV[1])], tonumber(ARGV[2])
local ttl, cap, now = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local state, meta, begun = KEYS[5], KEYS[4], KEYS[8]
local begin = ARGV[8] == '1'
local field = ARGV[12] .. ':first'
if begin then
  local known = redis.call('ZSCORE', begun, ARGV[13])
  if known then return {tonumber(known), redis.call('LLEN', list)} end
end
redis.call('HSETNX', state, 'epoch', ARGV[6])
local first = tonumber(redis.call('HGET', state, field) or '0')
local len = redis.call('LLEN', list)
for i = 13, #ARGV, 2 do
  local key = ARGV[i]
  local fresh = ids == 0 or key == '' or not redis.call('ZSCORE', KEYS[ids], key)
  if fresh then
    len = redis.call('RPUSH', list, ARGV[i + 1])
    if ids > 0 and key ~= '' then redis.call('ZADD', KEYS[ids], first + len - 1, key) end
  end
end
if len > cap then
  redis.call('LTRIM', list, len - cap, -1)
  first = first + len - cap
  redis.call('HSET', state, field, first)
  if ids > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[ids], '-inf', '(' .. first) end
  len = cap
end
local turn = 0
if begin then
  turn = redis.call('HINCRBY', state, 'turn_seq', 1)
  redis.call('ZADD', begun, turn, ARGV[13])
  redis.call('ZREMRANGEBYRANK', begun, 0, -(tonumber(ARGV[11]) + 1))
end
redis.call('HSETNX', meta, 'created_at', ARGV[5])
redis.call('HSET', meta, 'updated_at', ARGV[5])
if ARGV[7] ~= '' then redis.call('HSETNX', meta, 'title', ARGV[7]) end
touch(ttl, now, ARGV[9], ARGV[10], 'GT')
if ARGV[10] == '1' then redis.call('ZREMRANGEBYSCORE', KEYS[9], '-inf', now) end
return {turn, len}
"""

# ARGV: list_pos epoch known_first known_end ttl(0: no touch) now session_id use_index part.
# Returns {epoch, first, from, entries}: entries are the list from relative index ``from``. ``from`` is
# > 0 only when the caller's cache (same epoch, covering absolute positions known_first..known_end) is
# still a valid prefix; otherwise it is 0 and the entries are the whole list.
READ = _TOUCH + """
local list = KEYS[tonumber(ARGV[1])]
local s = redis.call('HMGET', KEYS[5], 'epoch', ARGV[9] .. ':first')
local epoch = s[1] or ''
local first = tonumber(s[2] or '0')
local len = redis.call('LLEN', list)
local known_first, known_end = tonumber(ARGV[3]), tonumber(ARGV[4])
local from = 0
if epoch ~= '' and epoch == ARGV[2] and known_first <= first and known_end >= first
   and known_end <= first + len then
  from = known_end - first
end
local entries = {}
if len > 0 then entries = redis.call('LRANGE', list, from, -1) end
if tonumber(ARGV[5]) > 0 and epoch ~= '' then
  touch(tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7], ARGV[8], 'XX')
end
return {epoch, first, from, entries}
"""
