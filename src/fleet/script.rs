//! The Lua scripts Redis runs for the fleet: each one atomic, each one round trip. Their
//! SHA-1 is computed once; Redis runs them by digest and loads one the first time it is
//! missing (the `redis` crate's `Script`).

use std::sync::LazyLock;

// The lease script counts `SUB_BUCKETS` (10) buckets before the current one, 11 in all.
const _: () = assert!(crate::security::rate_limit::SUB_BUCKETS == 10);

/// The lease script. KEYS[1]: the client's hash. ARGV: limit, bucket length in ms, requests
/// wanted, requests owed (charged even over the limit), bucket of a lease being handed back,
/// and how many of its requests were not spent. Returns {granted, bucket, ms left in the
/// bucket, ms until one more request fits (0 if some still do)}.
pub const SCRIPT_LEASE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local len = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local owed = tonumber(ARGV[4])
local back_bucket = tonumber(ARGV[5])
local back = tonumber(ARGV[6])
local b = math.floor(now / len)
local oldest = b - 10
local counts = {}
local sum = 0
local flat = redis.call('HGETALL', KEYS[1])
for i = 1, #flat, 2 do
  local bucket = tonumber(flat[i])
  local n = tonumber(flat[i + 1])
  if bucket < oldest then
    redis.call('HDEL', KEYS[1], flat[i])
  else
    if back > 0 and bucket == back_bucket then
      local kept = math.max(0, n - back)
      if kept == 0 then redis.call('HDEL', KEYS[1], flat[i]) else redis.call('HSET', KEYS[1], flat[i], kept) end
      n = kept
    end
    counts[bucket] = n
    sum = sum + n
  end
end
local room = math.max(0, limit - sum - owed)
local granted = math.min(want, room)
local charged = granted + owed
if charged > 0 then
  redis.call('HINCRBY', KEYS[1], b, charged)
  counts[b] = (counts[b] or 0) + charged
  sum = sum + charged
end
redis.call('PEXPIRE', KEYS[1], len * 11 + 1000)
local retry = 0
if sum >= limit then
  local excess = sum - (limit - 1)
  local freed_at = b + 11
  for bucket = oldest, b do
    local n = counts[bucket] or 0
    if n >= excess then freed_at = bucket + 11 break end
    excess = excess - n
  end
  retry = freed_at * len - now
end
return {granted, b, (b + 1) * len - now, retry}
";

/// [`SCRIPT_LEASE`], its SHA-1 computed once (Redis runs it by digest, loading it when new).
pub static LEASE: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(SCRIPT_LEASE));

/// Renews a record of this owner; 0: no record, 1: another owner's, else the record.
pub const CONFIRM: &str = r"
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
if string.sub(v, 1, #ARGV[1] + 1) ~= ARGV[1] .. ' ' then return 1 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return v
";

/// Deletes a record of this owner; 0: no record, 1: another owner's, 2: deleted.
pub const END: &str = r"
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
if string.sub(v, 1, #ARGV[1] + 1) ~= ARGV[1] .. ' ' then return 1 end
redis.call('DEL', KEYS[1])
return 2
";

pub static CONFIRM_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(CONFIRM));
pub static END_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(END));
