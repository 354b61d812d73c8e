//! The Lua scripts of the Redis store: each runs atomically on the server, so a record and its
//! index entries change together, and each is one round trip.
//!
//! Keys are built in the scripts from the store's prefix (`ARGV[1]`), so the scripts suit a
//! standalone or sentinel-managed Redis, not Redis Cluster. Times are unix milliseconds as
//! decimal strings, never past 2^52 (see `super::score`), so Lua's doubles hold them exactly.
//! Only equality is used on strings in Lua (its `<` follows the server's locale).

use std::sync::LazyLock;

use redis::Script;

/// Helpers for the scripts that write sessions. A session is a hash: `d` (the JSON record), `r`
/// (revision), `e` (expiry), `u` (sub), `a` (alias hashes, space-separated).
const SESSION_HELPERS: &str = r"
local P = ARGV[1]
local MARGIN = tonumber(ARGV[2])
local NOW = ARGV[3]

-- An index's own TTL: its latest entry's expiry plus the margin (garbage collection only).
local function settle(key)
  local top = redis.call('ZREVRANGE', key, 0, 0, 'WITHSCORES')
  if top[2] then
    redis.call('PEXPIREAT', key, string.format('%d', tonumber(top[2]) + MARGIN))
  end
end

-- `active` scores each sub by the latest expiry of its sessions.
local function refresh_active(sub)
  local top = redis.call('ZREVRANGE', P .. 'u:' .. sub, 0, 0, 'WITHSCORES')
  if top[2] then
    redis.call('ZADD', P .. 'active', top[2], sub)
  else
    redis.call('ZREM', P .. 'active', sub)
  end
end

local function add_entry(key, expires, id)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', NOW)
  redis.call('ZADD', key, expires, id)
  settle(key)
end

-- Removes a session and its index entries; returns its fields (d, e, u, a, x) or nil.
local function remove(id)
  local key = P .. 's:' .. id
  local f = redis.call('HMGET', key, 'd', 'e', 'u', 'a', 'x')
  redis.call('ZREM', P .. 'expiry', id)
  if not f[1] then
    return nil
  end
  for hash in string.gmatch(f[4], '%S+') do
    redis.call('ZREM', P .. 't:' .. hash, id)
  end
  if f[5] and f[5] ~= '' then
    redis.call('ZREM', P .. 'x:' .. f[5], id)
  end
  redis.call('ZREM', P .. 'u:' .. f[3], id)
  redis.call('DEL', key)
  refresh_active(f[3])
  return f
end

-- Writes a session and its index entries (`auth0`: its Auth0 session hash, or '').
local function write(id, data, revision, expires, sub, aliases, auth0)
  local key = P .. 's:' .. id
  redis.call('HSET', key, 'd', data, 'r', revision, 'e', expires, 'u', sub, 'a', aliases, 'x', auth0)
  redis.call('PEXPIREAT', key, string.format('%d', tonumber(expires) + MARGIN))
  for hash in string.gmatch(aliases, '%S+') do
    add_entry(P .. 't:' .. hash, expires, id)
  end
  if auth0 ~= '' then
    add_entry(P .. 'x:' .. auth0, expires, id)
  end
  add_entry(P .. 'u:' .. sub, expires, id)
  redis.call('ZADD', P .. 'expiry', expires, id)
  refresh_active(sub)
end
";

/// Helpers for the scripts that read records by id or write jobs. A job is a hash: `d` (the JSON
/// record), `m` (its member in `jobs`, `created_at ‖ id`), `r` (revision).
const RECORD_HELPERS: &str = r"
local P = ARGV[1]

-- The records (`d`) of the hashes `P .. kind .. id`, in the order of `ids`, skipping those gone.
local function records(kind, ids)
  local out = {}
  for _, id in ipairs(ids) do
    local d = redis.call('HGET', P .. kind .. id, 'd')
    if d then
      out[#out + 1] = d
    end
  end
  return out
end

-- Writes the job of PUT_JOB's and REPLACE_JOB's ARGV (id, record, index member, final, updated
-- at, revision from ARGV[2]) at `key` and moves its index entries; `old` is its stored member.
local function write_job(key, old)
  if old and old ~= ARGV[4] then
    redis.call('ZREM', P .. 'jobs', old)
  end
  redis.call('HSET', key, 'd', ARGV[3], 'm', ARGV[4], 'r', ARGV[7])
  redis.call('ZADD', P .. 'jobs', 0, ARGV[4])
  if ARGV[5] == '1' then
    redis.call('SREM', P .. 'jobs:open', ARGV[2])
    redis.call('ZADD', P .. 'jobs:done', ARGV[6], ARGV[2])
  else
    redis.call('SADD', P .. 'jobs:open', ARGV[2])
    redis.call('ZREM', P .. 'jobs:done', ARGV[2])
  end
end
";

/// A script whose `body` runs after `helpers` (their functions and locals in scope).
fn with_helpers(helpers: &str, body: &str) -> Script {
    Script::new(&format!("{helpers}\n{body}"))
}

/// ARGV: prefix, margin, now, id, data, revision, expires, sub, aliases, Auth0 session hash.
pub(super) static CREATE_SESSION: LazyLock<Script> = LazyLock::new(|| {
    with_helpers(
        SESSION_HELPERS,
        r"
remove(ARGV[4])
write(ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10])
return 1
",
    )
});

/// ARGV: prefix, margin, now, id, expected revision, data, new revision, expires, sub, aliases,
/// Auth0 session hash.
/// Answers `{'written'}`, `{'gone'}` or `{'conflict', stored record}`.
pub(super) static REPLACE_SESSION: LazyLock<Script> = LazyLock::new(|| {
    with_helpers(
        SESSION_HELPERS,
        r"
local id = ARGV[4]
local f = redis.call('HMGET', P .. 's:' .. id, 'd', 'r', 'e')
if not f[1] or tonumber(f[3]) <= tonumber(NOW) then
  return {'gone'}
end
if f[2] ~= ARGV[5] then
  return {'conflict', f[1]}
end
remove(id)
write(id, ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11])
return {'written'}
",
    )
});

/// ARGV: prefix, margin, now, id. Answers the removed record, or nil.
pub(super) static DELETE_SESSION: LazyLock<Script> = LazyLock::new(|| {
    with_helpers(
        SESSION_HELPERS,
        r"
local f = remove(ARGV[4])
if not f then
  return false
end
return f[1]
",
    )
});

/// ARGV: prefix, margin, now, sub. Answers the removed records.
pub(super) static DELETE_SESSIONS_OF: LazyLock<Script> = LazyLock::new(|| {
    with_helpers(
        SESSION_HELPERS,
        r"
local ids = redis.call('ZRANGE', P .. 'u:' .. ARGV[4], 0, -1)
local out = {}
for _, id in ipairs(ids) do
  local f = remove(id)
  if f then
    out[#out + 1] = f[1]
  end
end
return out
",
    )
});

/// ARGV: prefix, margin, now, limit. Removes up to `limit` sessions expired at `now` with their
/// entries, and the subs with no live session from `active`. Answers `{removed, seen}`.
pub(super) static SWEEP_SESSIONS: LazyLock<Script> = LazyLock::new(|| {
    with_helpers(
        SESSION_HELPERS,
        r"
local ids = redis.call('ZRANGEBYSCORE', P .. 'expiry', '-inf', NOW, 'LIMIT', 0, tonumber(ARGV[4]))
local removed = 0
for _, id in ipairs(ids) do
  local e = redis.call('HGET', P .. 's:' .. id, 'e')
  if e and tonumber(e) > tonumber(NOW) then
    redis.call('ZADD', P .. 'expiry', e, id)
  elseif remove(id) then
    removed = removed + 1
  end
end
redis.call('ZREMRANGEBYSCORE', P .. 'active', '-inf', NOW)
return {removed, #ids}
",
    )
});

/// ARGV: prefix, index key (after the prefix), now. The records of the entries of the index
/// (`t:<hash>`, `u:<sub>` or `x:<hash>`) that are live at `now`: one round trip for the hot path.
pub(super) static SESSIONS_IN_INDEX: LazyLock<Script> = LazyLock::new(|| {
    with_helpers(
        RECORD_HELPERS,
        r"
local ids = redis.call('ZRANGEBYSCORE', P .. ARGV[2], '(' .. ARGV[3], '+inf')
return records('s:', ids)
",
    )
});

/// KEYS: the state. ARGV: record, expires, now, expire at (ms). Stores the record unless a live
/// one is there (SET NX, where a record expired by the store's clock counts as absent).
pub(super) static PUT_STATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local e = redis.call('HGET', KEYS[1], 'e')
if e and tonumber(e) > tonumber(ARGV[3]) then
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'd', ARGV[1], 'e', ARGV[2])
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
return 1
",
    )
});

/// KEYS: the state. Removes and answers the record (the caller checks it is live).
pub(super) static TAKE_STATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local d = redis.call('HGET', KEYS[1], 'd')
if d then
  redis.call('DEL', KEYS[1])
end
return d
",
    )
});

/// KEYS: the state. ARGV: the record exactly as read. Removes it when it is still that record.
pub(super) static TAKE_STATE_IF: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HGET', KEYS[1], 'd') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
",
    )
});

/// KEYS: the lease. ARGV: holder, ttl (ms). Takes the lease when it is free or `holder`'s own
/// (an extension), with `PX` the ttl: its expiry is Redis's clock, never a daemon's. Answers 1
/// when `holder` holds it now.
pub(super) static TAKE_LEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
",
    )
});

/// KEYS: the lease. ARGV: holder. Removes the lease when `holder` holds it (a lease Redis
/// expired holds nobody); answers 1 when it did.
pub(super) static RELEASE_LEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
",
    )
});

/// ARGV: prefix, id, record, index member, final (`1`/`0`), updated at, revision (a job's hash:
/// `RECORD_HELPERS`).
pub(super) static PUT_JOB: LazyLock<Script> = LazyLock::new(|| {
    with_helpers(
        RECORD_HELPERS,
        r"
local key = P .. 'j:' .. ARGV[2]
write_job(key, redis.call('HGET', key, 'm'))
return 1
",
    )
});

/// ARGV: prefix, id, record (at the new revision), index member, final (`1`/`0`), updated at,
/// new revision, expected revision. Compare-and-swap: answers `{2}` written, `{1, d}` another
/// revision is stored (here it is), `{0}` no such record.
pub(super) static REPLACE_JOB: LazyLock<Script> = LazyLock::new(|| {
    with_helpers(
        RECORD_HELPERS,
        r"
local key = P .. 'j:' .. ARGV[2]
local current = redis.call('HMGET', key, 'd', 'r', 'm')
if not current[1] then
  return {0, false}
end
if (current[2] or '0') ~= ARGV[8] then
  return {1, current[1]}
end
write_job(key, current[3])
return {2, false}
",
    )
});

/// ARGV: prefix, upper bound (a `ZREVRANGEBYLEX` max), limit. Newest first.
pub(super) static LIST_JOBS: LazyLock<Script> = LazyLock::new(|| {
    with_helpers(
        RECORD_HELPERS,
        r"
local members = redis.call('ZREVRANGEBYLEX', P .. 'jobs', ARGV[2], '-', 'LIMIT', 0, tonumber(ARGV[3]))
local ids = {}
for i, m in ipairs(members) do
  ids[i] = string.sub(m, 17)
end
return records('j:', ids)
",
    )
});

/// ARGV: prefix. The records whose status is not final.
pub(super) static UNFINISHED_JOBS: LazyLock<Script> = LazyLock::new(|| {
    with_helpers(
        RECORD_HELPERS,
        r"
return records('j:', redis.call('SMEMBERS', P .. 'jobs:open'))
",
    )
});

/// ARGV: prefix, cutoff. Deletes the final records updated before the cutoff; answers how many.
pub(super) static DELETE_FINISHED_JOBS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local P = ARGV[1]
local ids = redis.call('ZRANGEBYSCORE', P .. 'jobs:done', '-inf', '(' .. ARGV[2])
for _, id in ipairs(ids) do
  local key = P .. 'j:' .. id
  local m = redis.call('HGET', key, 'm')
  if m then
    redis.call('ZREM', P .. 'jobs', m)
  end
  redis.call('DEL', key, P .. 'jp:' .. id)
  redis.call('ZREM', P .. 'jobs:done', id)
end
return #ids
",
    )
});
