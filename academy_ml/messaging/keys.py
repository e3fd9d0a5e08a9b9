"""Redis key layout of one deployment, and the Lua scripts that keep it consistent.

Every key starts with the deployment's prefix, so deployments sharing a Redis
never see each other. Per mailbox ``uid``:

- ``{prefix}:mb:{uid}`` hash: status (ACTIVE/TERMINATED), kind, name, the
  agent's MRO, last heartbeat (server time) and counters the owner publishes.
- ``{prefix}:q:{uid}`` stream: the mailbox. It exists exactly while the
  mailbox is active, so a send is one ``XADD ... NOMKSTREAM`` that fails
  when the mailbox is missing or terminated.
- ``{prefix}:ctl:{uid}`` stream: a close marker, written on termination, that
  wakes the mailbox's blocked reader.

Per agent type (fully qualified class name): ``{prefix}:type:{name}`` holds
the agents whose MRO contains it, ``{prefix}:exact:{name}`` those of exactly
that type, so discovery reads one sorted set instead of scanning the
keyspace. Their scores are registration numbers (``{prefix}:seq``), so
discovery lists agents in the order they were registered, as Academy's
exchanges do.

The scripts compute type-set keys from the stored MRO, which standalone Redis
allows; Redis Cluster would need hash tags (not supported).
"""

from __future__ import annotations

from academy.identifier import EntityId

STATUS_ACTIVE = b"ACTIVE"
STATUS_TERMINATED = b"TERMINATED"
#: Field of a stream entry that carries the frame.
FRAME_FIELD = b"m"


class Keys:
    """Key names of one deployment.

    Args:
        prefix: The deployment's key prefix.
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def mailbox(self, uid: EntityId) -> str:
        """Hash with the mailbox's status, identity, heartbeat and counters."""
        return f"{self.prefix}:mb:{uid.uid}"

    def queue(self, uid: EntityId) -> str:
        """Stream of the mailbox's messages."""
        return f"{self.prefix}:q:{uid.uid}"

    def control(self, uid: EntityId) -> str:
        """Stream that receives the close marker on termination."""
        return f"{self.prefix}:ctl:{uid.uid}"

    def agent_type(self, name: str, *, exact: bool) -> str:
        """Sorted set of agents of (or, unless ``exact``, derived from) type ``name``."""
        return f"{self.prefix}:{'exact' if exact else 'type'}:{name}"


#: KEYS: mailbox, queue. ARGV: kind, name, mro (comma separated), prefix, uid.
REGISTER = """
redis.call('HSET', KEYS[1], 'status', 'ACTIVE', 'kind', ARGV[1], 'name', ARGV[2],
           'mro', ARGV[3])
redis.call('XADD', KEYS[2], '*', 'm', '')
redis.call('XTRIM', KEYS[2], 'MAXLEN', 0)
local seq = redis.call('INCR', ARGV[4] .. ':seq')
local first = true
for name in string.gmatch(ARGV[3], '[^,]+') do
  if first then
    redis.call('ZADD', ARGV[4] .. ':exact:' .. name, 'NX', seq, ARGV[5])
    first = false
  end
  redis.call('ZADD', ARGV[4] .. ':type:' .. name, 'NX', seq, ARGV[5])
end
return 1
"""

#: KEYS: mailbox, queue, control. ARGV: ttl seconds, prefix, uid.
#: Returns the frames still queued (their requests get an error reply), or
#: false when the mailbox does not exist.
TERMINATE = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return false end
local queued = {}
if status == 'ACTIVE' then
  for _, entry in ipairs(redis.call('XRANGE', KEYS[2], '-', '+')) do
    table.insert(queued, entry[2][2])
  end
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'status', 'TERMINATED')
  redis.call('XADD', KEYS[3], '*', 'close', '1')
  local mro = redis.call('HGET', KEYS[1], 'mro') or ''
  for name in string.gmatch(mro, '[^,]+') do
    redis.call('ZREM', ARGV[2] .. ':exact:' .. name, ARGV[3])
    redis.call('ZREM', ARGV[2] .. ':type:' .. name, ARGV[3])
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[3], ARGV[1])
return queued
"""

#: KEYS: queue, mailbox. ARGV: entry id. Deletes an entry the reader cannot
#: use and counts it, once: a retry after a lost reply finds it gone.
DROP = """
if redis.call('XDEL', KEYS[1], ARGV[1]) == 1 then
  redis.call('HINCRBY', KEYS[2], 'dropped', 1)
  return 1
end
return 0
"""

#: KEYS: mailbox. ARGV: incoming, outgoing, completed deltas.
#: Returns the status (false when missing); updates only active mailboxes.
HEARTBEAT = """
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'ACTIVE' then return status end
local now = redis.call('TIME')
redis.call('HSET', KEYS[1], 'heartbeat', now[1] .. '.' .. string.format('%06d', now[2]))
redis.call('HINCRBY', KEYS[1], 'incoming', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'outgoing', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'completed', ARGV[3])
return status
"""

#: KEYS: mailbox. Returns [status, heartbeat or false, server time].
STATUS = """
local fields = redis.call('HMGET', KEYS[1], 'status', 'heartbeat')
local now = redis.call('TIME')
return {fields[1], fields[2], now[1] .. '.' .. string.format('%06d', now[2])}
"""

#: KEYS: type set. ARGV: prefix. Returns [uid, name] of its active agents,
#: in registration order.
DISCOVER = """
local found = {}
for _, uid in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local fields = redis.call('HMGET', ARGV[1] .. ':mb:' .. uid, 'status', 'name')
  if fields[1] == 'ACTIVE' then table.insert(found, {uid, fields[2] or ''}) end
end
return found
"""

#: KEYS: mailbox, queue. Returns [hash as a flat list, queue length, server time].
INFO = """
local now = redis.call('TIME')
return {redis.call('HGETALL', KEYS[1]), redis.call('XLEN', KEYS[2]),
        now[1] .. '.' .. string.format('%06d', now[2])}
"""
