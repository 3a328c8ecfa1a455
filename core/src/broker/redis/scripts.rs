//! The Lua scripts the Redis broker runs. Redis runs a script atomically,
//! which is what makes seq assignment, retention and publishing one step:
//! the order messages are published on a room's channel is their seq order.
//!
//! A room's stream entries have ids `SEQ-0` and the fields `t` (creation
//! time, ms) and `b` (the [`Unsequenced`](crate::message::Unsequenced) body). Times come from
//! Redis's clock, one clock for every node, so nodes' clock differences do
//! not show in a room's timestamps. Numbers are formatted with `%d`: Lua's
//! default would write large ones in exponent form.

use std::sync::LazyLock;

use redis::Script;

/// Publishes messages in order, one seq each, except a message whose
/// nonce was published under within the window: that one is not published
/// again.
///
/// KEYS: seq, log, channel, the room's nonce key prefix. ARGV: highest seq
/// this node may hand out (its reservation in the database), retained
/// count, retained age (ms), nonce window (ms), then for each message its
/// nonce key (empty: none), its id and its body. A nonce key holds
/// `SEQ ID` of the message first published under it (small: the window's
/// nonces cost Redis little whatever the messages' size). Returns the
/// publish time (ms),
/// the seq of the last message published, how many messages it went
/// through, why it stopped short of the end, if it did (`0` it went through
/// all, `1` the room's seq is not in Redis: seed it from the database, `2`
/// the node must reserve seqs past the last seq first), then one item per
/// message gone through: its seq if it was published, or the first
/// publish's `SEQ ID` if its nonce was seen.
pub(super) static PUBLISH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local current = redis.call('GET', KEYS[1])
if not current then return {0, 0, 0, 1} end
current = tonumber(current)
local ceiling = tonumber(ARGV[1])
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local result = {ms, current, 0, 0}
local published = 0
local i = 5
while i + 2 <= #ARGV do
  local nonce, id, body = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local first = false
  if nonce ~= '' then first = redis.call('GET', KEYS[4] .. nonce) end
  if first then
    table.insert(result, first)
  else
    if current >= ceiling then
      result[4] = 2
      break
    end
    current = current + 1
    redis.call('SET', KEYS[1], current)
    redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], string.format('%d-0', current), 't', ms, 'b', body)
    local payload = string.format('%d %d ', current, ms) .. body
    redis.call('PUBLISH', KEYS[3], payload)
    if nonce ~= '' then redis.call('SET', KEYS[4] .. nonce, string.format('%d ', current) .. id, 'PX', ARGV[4]) end
    table.insert(result, current)
    published = published + 1
  end
  i = i + 3
end
if published > 0 then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
result[2] = current
result[3] = #result - 4
return result
",
    )
});

/// Restores a room's seq, stream and redactions from the database, unless
/// another node did it first.
///
/// KEYS: seq, log, redacted. ARGV: last seq, retained age (ms), then
/// `seq, ms, body, redacted ms (0: not redacted)` for each retained
/// message, oldest first. Returns 1 if it seeded.
pub(super) static SEED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if not redis.call('SET', KEYS[1], ARGV[1], 'NX') then return 0 end
redis.call('DEL', KEYS[2], KEYS[3])
for i = 3, #ARGV, 4 do
  redis.call('XADD', KEYS[2], ARGV[i] .. '-0', 't', ARGV[i + 1], 'b', ARGV[i + 2])
  if ARGV[i + 3] ~= '0' then redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 3]) end
end
if #ARGV >= 3 then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
if redis.call('EXISTS', KEYS[3]) == 1 then redis.call('PEXPIRE', KEYS[3], ARGV[2]) end
return 1
",
    )
});

/// Marks retained messages redacted.
///
/// KEYS: log, redacted. ARGV: the time of the redaction (ms), retained age
/// (ms), then seqs. Returns the seqs it marked: those in the stream and not
/// marked already.
pub(super) static REDACT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local marked = {}
for i = 3, #ARGV do
  local id = ARGV[i] .. '-0'
  if #redis.call('XRANGE', KEYS[1], id, id) > 0 and redis.call('HSETNX', KEYS[2], ARGV[i], ARGV[1]) == 1 then
    table.insert(marked, tonumber(ARGV[i]))
  end
end
if #marked > 0 then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
return marked
",
    )
});

/// Reads a room's bounds and retained messages, dropping aged-out ones
/// first.
///
/// KEYS: seq, log, redacted. ARGV: first seq wanted, most messages (0 for
/// the bounds only), retained age (ms). Returns `{-1}` when the room's seq
/// is not in Redis, else `{last_seq, first_seq, seq, ms, body, redacted, …}`
/// with four values per message, `redacted` the redaction's time (ms) or 0.
pub(super) static HISTORY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local last = redis.call('GET', KEYS[1])
if not last then return {-1} end
local now = redis.call('TIME')
local cutoff = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - tonumber(ARGV[3])
while true do
  local oldest = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
  if #oldest == 0 or tonumber(oldest[1][2][2]) >= cutoff then break end
  redis.call('XDEL', KEYS[2], oldest[1][1])
end
local result = {tonumber(last), tonumber(last) + 1}
local oldest = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
if #oldest > 0 then result[2] = tonumber(string.match(oldest[1][1], '^%d+')) end
if tonumber(ARGV[2]) > 0 then
  for _, entry in ipairs(redis.call('XRANGE', KEYS[2], ARGV[1] .. '-0', '+', 'COUNT', ARGV[2])) do
    local seq = string.match(entry[1], '^%d+')
    table.insert(result, tonumber(seq))
    table.insert(result, tonumber(entry[2][2]))
    table.insert(result, entry[2][4])
    table.insert(result, tonumber(redis.call('HGET', KEYS[3], seq) or '0'))
  end
end
return result
",
    )
});

/// Sums the counts other nodes published under some names (room ids, or
/// the socket count names of `quotas::SocketOwner`), and forgets nodes
/// whose counts expired (they stopped or lost Redis).
///
/// KEYS: the node set. ARGV: this node's id, the key prefix, then names.
/// Returns one count per name, in order.
pub(super) static ONLINE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local counts = {}
for i = 3, #ARGV do counts[i - 2] = 0 end
for _, node in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if node ~= ARGV[1] then
    local key = ARGV[2] .. ':node:' .. node .. ':online'
    if redis.call('EXISTS', key) == 0 then
      redis.call('SREM', KEYS[1], node)
    else
      for i = 3, #ARGV do
        local n = redis.call('HGET', key, ARGV[i])
        if n then counts[i - 2] = counts[i - 2] + tonumber(n) end
      end
    end
  end
end
return counts
",
    )
});

/// The next value of a presence room's version key: one more than the
/// last, and at least Redis's clock in microseconds, so versions keep
/// growing even after Redis lost its data (a connection skips queued changes
/// up to the version its welcome reflects; a version going back would hide
/// later changes from it).
const NEXT_VERSION: &str = r"
local function next_version(key)
  local now = redis.call('TIME')
  local v = math.max(tonumber(redis.call('GET', key) or '0') + 1, tonumber(now[1]) * 1000000 + tonumber(now[2]))
  redis.call('SET', key, string.format('%d', v))
  return v
end
";

/// A connection arrives in a presence room (see `roster`).
///
/// KEYS: the room's presence hash, members hash, joined set, presence
/// version, the leave schedule, this node's presence hash, the room's
/// channel, the room's name key. ARGV: endpoint row id, the member's card
/// (`"id":…,"meta":…`), `ROOM:ENDPOINT`, the room's name as a JSON string.
/// Publishes `P VERSION FRAME` and returns the version when the endpoint
/// joins; returns 0 when it was there already or comes back within its
/// grace period.
pub(super) static ARRIVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        &[
            NEXT_VERSION,
            r#"
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('HINCRBY', KEYS[6], ARGV[3], 1)
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('SET', KEYS[8], ARGV[4])
if n ~= 1 then return 0 end
if redis.call('ZREM', KEYS[5], ARGV[3]) == 1 then return 0 end
local v = next_version(KEYS[4])
redis.call('ZADD', KEYS[3], v, ARGV[1])
redis.call('PUBLISH', KEYS[7], string.format('P %d ', v) ..
  '{"type":"join","room":' .. ARGV[4] .. ',"member":{' .. ARGV[2] .. ',"connections":1}}')
return v
"#,
        ]
        .concat(),
    )
});

/// Replaces a member's card (its meta changed), if it is a member.
///
/// KEYS: the room's presence hash, its cards hash. ARGV: endpoint row id,
/// the card. Returns 1 if it was a member.
pub(super) static UPDATE_CARD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
",
    )
});

/// A connection departs from a presence room.
///
/// KEYS: the room's presence hash, the leave schedule, this node's presence
/// hash. ARGV: endpoint row id, `ROOM:ENDPOINT`, leave time (ms). When the
/// endpoint has no connection left on any node, it is scheduled to leave.
/// Returns its connections left, or -1 when this node's share was not in
/// Redis (Redis lost it, or other nodes counted this node out and took its
/// share away already): then nothing is taken away twice.
pub(super) static DEPART: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local mine = tonumber(redis.call('HGET', KEYS[3], ARGV[2]) or '0')
if mine <= 0 then return -1 end
if mine == 1 then redis.call('HDEL', KEYS[3], ARGV[2]) else redis.call('HINCRBY', KEYS[3], ARGV[2], -1) end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return -1 end
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
if n <= 0 then
  redis.call('HSET', KEYS[1], ARGV[1], 0)
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
  return 0
end
return n
",
    )
});

/// Sends the leaves that are due, after counting out the connections of
/// nodes that stopped refreshing their liveness key (killed, or cut off from
/// Redis): their endpoints with no connection elsewhere leave at once, and
/// the rooms they alone had connections in are vacated.
///
/// KEYS: the leave schedule, the set of nodes with presence. ARGV: now
/// (ms), the key prefix. For each leave: publishes `P VERSION FRAME` on the
/// room's channel. Returns `{leaves, vacated}`: the leaves sent as
/// `{room id, room name as a JSON string, member JSON}` triples, flattened,
/// and the ids of the rooms vacated. Any node may run it:
/// each scheduled leave is taken out of the schedule by exactly one run.
pub(super) static EXPIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        &[
            NEXT_VERSION,
            r#"
local prefix = ARGV[2]
local vacated = {}
for _, node in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local base = prefix .. ':node:' .. node
  if redis.call('EXISTS', base .. ':alive') == 0 then
    local held = redis.call('HGETALL', base .. ':presence')
    for i = 1, #held, 2 do
      local room, ep = string.match(held[i], '^(%d+):(%d+)$')
      local key = prefix .. ':room:' .. room .. ':presence'
      if room and redis.call('HEXISTS', key, ep) == 1 then
        if redis.call('HINCRBY', key, ep, -tonumber(held[i + 1])) <= 0 then
          redis.call('HSET', key, ep, 0)
          redis.call('ZADD', KEYS[1], ARGV[1], held[i])
        end
      end
    end
    redis.call('DEL', base .. ':presence')
    for _, room in ipairs(redis.call('SMEMBERS', base .. ':rooms')) do
      local nodes = prefix .. ':room:' .. room .. ':nodes'
      if redis.call('SREM', nodes, node) == 1 and redis.call('SCARD', nodes) == 0 then
        table.insert(vacated, tonumber(room))
      end
    end
    redis.call('DEL', base .. ':rooms')
    redis.call('SREM', KEYS[2], node)
    redis.call('SET', base .. ':reaped', 1, 'EX', 3600)
  end
end
local sent = {}
for _, item in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 1000)) do
  redis.call('ZREM', KEYS[1], item)
  local room, ep = string.match(item, '^(%d+):(%d+)$')
  local base = prefix .. ':room:' .. room
  if room and tonumber(redis.call('HGET', base .. ':presence', ep) or '1') <= 0 then
    local card = redis.call('HGET', base .. ':members', ep)
    local name = redis.call('GET', base .. ':name')
    redis.call('HDEL', base .. ':presence', ep)
    redis.call('HDEL', base .. ':members', ep)
    redis.call('ZREM', base .. ':joined', ep)
    if card and name then
      local v = next_version(base .. ':pversion')
      local member = '{' .. card .. ',"connections":0}'
      redis.call('PUBLISH', base, string.format('P %d ', v) ..
        '{"type":"leave","room":' .. name .. ',"member":' .. member .. '}')
      table.insert(sent, tonumber(room))
      table.insert(sent, name)
      table.insert(sent, member)
    end
  end
end
return {sent, vacated}
"#,
        ]
        .concat(),
    )
});

/// A presence room's members with the version they reflect.
///
/// KEYS: the room's presence hash, members hash, joined set, presence
/// version. Returns `{version, card, connections, card, connections, …}`
/// in the order the members joined.
pub(super) static MEMBERS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local out = {tonumber(redis.call('GET', KEYS[4]) or '0')}
for _, ep in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  local card = redis.call('HGET', KEYS[2], ep)
  if card then
    table.insert(out, card)
    table.insert(out, tonumber(redis.call('HGET', KEYS[1], ep) or '0'))
  end
end
return out
",
    )
});

/// A room got its first connection on this node (see `roster`).
///
/// KEYS: the room's node set, this node's room set. ARGV: this node's id,
/// the room's id. Returns 1 when the room was empty on every node (it is
/// occupied now), else 0.
pub(super) static OCCUPY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local added = redis.call('SADD', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
if added == 1 and redis.call('SCARD', KEYS[1]) == 1 then return 1 end
return 0
",
    )
});

/// A room lost its last connection on this node.
///
/// KEYS and ARGV: as [`OCCUPY`]. Returns 1 when no node has a connection
/// in the room any more (it is vacated now), else 0.
pub(super) static VACATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local removed = redis.call('SREM', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[2], ARGV[2])
if removed == 1 and redis.call('SCARD', KEYS[1]) == 0 then return 1 end
return 0
",
    )
});

/// Refreshes this node's liveness key and tells whether its presence data
/// survived since the last refresh.
///
/// KEYS: this node's liveness key, its reaped marker, the set of nodes with
/// presence. ARGV: this node's id, the key's lifetime (ms). Returns 0 when
/// the key was still there; 1 when it was gone without the node being
/// counted out (first start, or Redis lost its data): the node puts its
/// connections back silently; 2 when other nodes counted it out (their
/// members were sent `leave`): it puts them back with `join`s.
pub(super) static ALIVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local was = redis.call('SET', KEYS[1], 1, 'PX', ARGV[2], 'GET')
redis.call('SADD', KEYS[3], ARGV[1])
if was then return 0 end
if redis.call('DEL', KEYS[2]) == 1 then return 2 end
return 1
",
    )
});

/// Puts back one endpoint's connections on this node into a presence room
/// (see [`ALIVE`]), adding only what this node's presence hash does not
/// hold already: if its liveness key merely expired (the node paused) and
/// nothing was lost or counted out, nothing changes.
///
/// KEYS: as [`ARRIVE`]. ARGV: as [`ARRIVE`], then the connections, then 1
/// to announce a `join` if the endpoint was gone, 0 to put it back silently.
/// Returns the version when the endpoint became a member again, else 0.
pub(super) static RESTORE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        &[
            NEXT_VERSION,
            r#"
local count = tonumber(ARGV[5])
local had = tonumber(redis.call('HGET', KEYS[6], ARGV[3]) or '0')
redis.call('HSET', KEYS[6], ARGV[3], count)
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('SET', KEYS[8], ARGV[4])
local before = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HINCRBY', KEYS[1], ARGV[1], count - had)
if before then
  if tonumber(before) <= 0 then redis.call('ZREM', KEYS[5], ARGV[3]) end
  return 0
end
local v = next_version(KEYS[4])
redis.call('ZADD', KEYS[3], v, ARGV[1])
if ARGV[6] == '1' then
  redis.call('PUBLISH', KEYS[7], string.format('P %d ', v) ..
    '{"type":"join","room":' .. ARGV[4] .. ',"member":{' .. ARGV[2] .. ',"connections":' .. count .. '}}')
end
return v
"#,
        ]
        .concat(),
    )
});
