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

/// Publishes one message.
///
/// KEYS: seq, log, channel. ARGV: highest seq this node may hand out (its
/// reservation in the database), retained count, retained age (ms), body.
/// Returns `{0, seq, ms}` when published, `{1, 0, 0}` when the room's seq is
/// not in Redis (it must be seeded from the database), `{2, current, 0}`
/// when the node must reserve seqs past `current` first.
pub(super) static PUBLISH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local current = redis.call('GET', KEYS[1])
if not current then return {1, 0, 0} end
current = tonumber(current)
if current >= tonumber(ARGV[1]) then return {2, current, 0} end
local seq = current + 1
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('SET', KEYS[1], seq)
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], string.format('%d-0', seq), 't', ms, 'b', ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('PUBLISH', KEYS[3], string.format('%d %d ', seq, ms) .. ARGV[4])
return {0, seq, ms}
",
    )
});

/// Restores a room's seq and stream from the database, unless another node
/// did it first.
///
/// KEYS: seq, log. ARGV: last seq, retained age (ms), then `seq, ms, body`
/// for each retained message, oldest first. Returns 1 if it seeded.
pub(super) static SEED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if not redis.call('SET', KEYS[1], ARGV[1], 'NX') then return 0 end
redis.call('DEL', KEYS[2])
for i = 3, #ARGV, 3 do
  redis.call('XADD', KEYS[2], ARGV[i] .. '-0', 't', ARGV[i + 1], 'b', ARGV[i + 2])
end
if #ARGV >= 3 then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
return 1
",
    )
});

/// Reads a room's bounds and retained messages, dropping aged-out ones
/// first.
///
/// KEYS: seq, log. ARGV: first seq wanted, most messages (0 for the bounds
/// only), retained age (ms). Returns `{-1}` when the room's seq is not in
/// Redis, else `{last_seq, first_seq, seq, ms, body, seq, ms, body, …}`.
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
    table.insert(result, tonumber(string.match(entry[1], '^%d+')))
    table.insert(result, tonumber(entry[2][2]))
    table.insert(result, entry[2][4])
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
