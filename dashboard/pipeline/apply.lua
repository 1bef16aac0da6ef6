-- Apply one batch of validated events to the city state, atomically, and
-- acknowledge their stream entries in the same step.
--
-- KEYS[1]  the events stream (on a cluster where it is in another slot: a state key,
--          and the caller acknowledges the entries after the script)
-- ARGV[1]  consumer group
-- ARGV[2]  MessagePack (cheaper to unpack than JSON): {p: key prefix, ttl: dedup seconds, keep: closed-incident
--          seconds, dayttl: day-hash seconds, sla: {category: minutes},
--          fb: fallback minutes, root: city area id, feed: feed size,
--          now: wall ms, ev: [{...event...}, ...], reg: (a replay only) name of the
--          set, under the prefix, that lists every key this script writes}
--          Each event is a named record (dashboard/kinds): id, key (its register key),
--          ts, feed (JSON or ''), and `a`, its applier: 'inc' (an incident update) or
--          'reg' (a register: hash `h`, field `f`, value `v`, kept when its key is newer).
-- ARGV[3..] stream entry ids to acknowledge
--
-- Every piece of state is a register decided by event time (a key
-- "<ts padded to 15 digits>|<rank>|<event_id>" that compares as a string),
-- so the result does not depend on arrival order, and applying an event
-- again changes nothing. Counters (per day) are derived from the incident
-- record: the record's old contribution is taken away and its new one added.
-- Reads and writes are made once per batch (HMGET before, HSET after), since
-- each redis.call costs more than the Lua around it.
-- Returns {applied, duplicates, positions of the duplicates in the batch (1-based)}.

local batch = cmsgpack.unpack(ARGV[2])
local P = batch.p
local events = batch.ev
local NOW = batch.now

-- 1. Which events were applied before: event_ids remembered per bucket of ts (`sb` ms:
--    an hour, or the dedup TTL if shorter), each bucket kept until its end + `ttl`
local by_bucket = {}
for i, e in ipairs(events) do
  local b = math.floor(e.ts / batch.sb)
  local t = by_bucket[b]
  if not t then t = {ids = {}, idx = {}}; by_bucket[b] = t end
  t.ids[#t.ids + 1] = e.id
  t.idx[#t.idx + 1] = i
end
local skip = {}
for b, t in pairs(by_bucket) do
  local flags = redis.call('SMISMEMBER', P .. 'seen:' .. b, unpack(t.ids))
  for j, f in ipairs(flags) do
    if f == 1 then skip[t.idx[j]] = true end
  end
end
local in_batch = {}
for i, e in ipairs(events) do
  if not skip[i] then
    if in_batch[e.id] then skip[i] = true else in_batch[e.id] = true end
  end
end

-- 2. Read every record the batch touches, once
local function hmget_into(out, key, fields)
  if #fields > 0 then
    local values = redis.call('HMGET', key, unpack(fields))
    for j, f in ipairs(fields) do out[f] = values[j] end
  end
  return out
end
local inc_raw, reg_fields, reg_seen = {}, {}, {}
do
  local ids, seen = {}, {}
  for i, e in ipairs(events) do
    if skip[i] then
    elseif e.a == 'inc' then
      if not seen[e.iid] then seen[e.iid] = true; ids[#ids + 1] = e.iid end
    else
      local hk = e.h .. '\0' .. e.f
      if not reg_seen[hk] then
        reg_seen[hk] = true
        local list = reg_fields[e.h]
        if not list then list = {}; reg_fields[e.h] = list end
        list[#list + 1] = e.f
      end
    end
  end
  hmget_into(inc_raw, P .. 'inc', ids)
end
-- every register (hash, field) the batch touches: its stored value, by 'hash\0field'
local reg_old = {}
for h, fields in pairs(reg_fields) do
  local values = hmget_into({}, P .. h, fields)
  for f, v in pairs(values) do reg_old[h .. '\0' .. f] = v end
end
local notes_raw = {}
do
  local ids, seen = {}, {}
  for i, e in ipairs(events) do
    if e.a == 'inc' and e.hist ~= '' and not skip[i] and not seen[e.iid] then
      seen[e.iid] = true; ids[#ids + 1] = e.iid
    end
  end
  if #ids > 0 then
    local values = redis.call('HMGET', P .. 'notes', unpack(ids))
    for j, id in ipairs(ids) do notes_raw[id] = values[j] end
  end
end
local notes_new = {}
local NOTES_KEPT = 30

local incidents, dirty_inc = {}, {}
local counters = {}

local function newer(key, old_key)
  return old_key == nil or key > old_key
end

local function contributions(rec)
  local out = {}
  local area = rec.area or batch.root
  if rec.rts then
    out[rec.rday .. '\0r|' .. area] = 1
    out[rec.rday .. '\0h|' .. rec.rhour .. '|' .. area] = 1
  end
  if rec.st == 'closed' then
    local secs = math.floor((rec.sts - (rec.rts or rec.t0)) / 1000)
    if secs < 0 then secs = 0 end
    out[rec.sday .. '\0c|' .. area] = 1
    out[rec.sday .. '\0s|' .. area] = secs
  end
  return out
end

local function count(contrib, sign)
  for k, v in pairs(contrib) do counters[k] = (counters[k] or 0) + sign * v end
end

-- e = {a='inc', id, key, ts, day, hour, area, lon, lat, iid, st (status), stk (its key),
--      cat, src, sev, title, dept, sla, loc (place rank), hist, feed}
-- An update from the command stream may have no status ('' : a note) and carries a
-- history entry (JSON, `hist`) that is appended to the incident's action history.
local NAMES = {'cat', 'src', 'sev', 'title', 'dept', 'sla'}
local function apply_incident(e)
  local iid, ts, key = e.iid, e.ts, e.key
  local rec = incidents[iid]
  if not rec then
    local raw = inc_raw[iid]
    rec = raw and cjson.decode(raw) or {}
    incidents[iid] = rec
  end
  local old = contributions(rec)
  if rec.t0 == nil or ts < rec.t0 then rec.t0 = ts end
  if e.st ~= '' and newer(e.stk, rec.stk) then
    rec.st, rec.stk, rec.sts, rec.sday = e.st, e.stk, ts, e.day
  end
  if e.hist ~= '' then
    local list = notes_new[iid]
    if not list then
      local raw = notes_raw[iid]
      list = raw and cjson.decode(raw) or {}
      notes_new[iid] = list
    end
    list[#list + 1] = cjson.decode(e.hist)
    if #list > NOTES_KEPT then table.remove(list, 1) end
  end
  if e.st == 'reported' and (rec.rts == nil or ts < rec.rts) then
    rec.rts, rec.rday, rec.rhour = ts, e.day, e.hour
  end
  if e.area ~= '' then
    local lk = e.loc .. key
    if newer(lk, rec.lk) then
      rec.lk, rec.area, rec.lon, rec.lat = lk, e.area, e.lon, e.lat
    end
  end
  for _, name in ipairs(NAMES) do
    local v = e[name]
    if v ~= '' and newer(key, rec['k_' .. name]) then
      rec[name] = v
      rec['k_' .. name] = key
    end
  end
  count(old, -1)
  count(contributions(rec), 1)
  dirty_inc[iid] = true
end

local reg_new = {}
local function packed_key(packed)
  return string.sub(packed, 1, string.find(packed, '\t', 1, true) - 1)
end

-- e = {a='reg', id, key, ts, h (hash), f (field), v (the record, JSON), feed}: the latest
-- by event time is kept, stored as "<key>\t<record>" so that the key compares cheaply
local function apply_register(e)
  local hk = e.h .. '\0' .. e.f
  local old = reg_new[hk] or reg_old[hk]
  if old and not newer(e.key, packed_key(old)) then return end
  reg_new[hk] = e.key .. '\t' .. e.v
end

-- 3. Apply in order, in memory
local appliers = {inc = apply_incident, reg = apply_register}
local applied, dups, last_ts = 0, 0, 0
local dup_at = {}  -- positions (1-based) of the duplicates, for the worker's counts by kind
local feed = {}
local new_seen = {}
for i, e in ipairs(events) do
  if skip[i] then
    dups = dups + 1
    dup_at[#dup_at + 1] = i
  else
    appliers[e.a](e)
    applied = applied + 1
    if e.feed ~= '' then feed[#feed + 1] = e.feed end
    if e.ts > last_ts then last_ts = e.ts end
    local b = math.floor(e.ts / batch.sb)
    new_seen[b] = new_seen[b] or {}
    table.insert(new_seen[b], e.id)
  end
end

-- 4. Write back, once per key
local function hset_all(key, map)
  local flat = {}
  for k, v in pairs(map) do flat[#flat + 1] = k; flat[#flat + 1] = v end
  if #flat > 0 then redis.call('HSET', key, unpack(flat)) end
end

local inc_out, open_out, open_gone, closed_add, closed_rem = {}, {}, {}, {}, {}
for iid, _ in pairs(dirty_inc) do
  local rec = incidents[iid]
  inc_out[iid] = cjson.encode(rec)
  if rec.st ~= 'closed' then
    local minutes = tonumber(rec.sla) or tonumber(batch.sla[rec.cat or '']) or batch.fb
    local start = rec.rts or rec.t0
    open_out[iid] = cjson.encode({
      area = rec.area or batch.root, lon = tonumber(rec.lon), lat = tonumber(rec.lat),
      cat = rec.cat or '', src = rec.src or '', sev = tonumber(rec.sev or '2'),
      st = rec.st, sts = rec.sts, start = start, due = start + minutes * 60000,
      title = rec.title or '', dept = rec.dept or ''})
    closed_rem[#closed_rem + 1] = iid
  else
    open_gone[#open_gone + 1] = iid
    closed_add[#closed_add + 1] = NOW
    closed_add[#closed_add + 1] = iid
  end
end
hset_all(P .. 'inc', inc_out)
hset_all(P .. 'open', open_out)
local reg_out = {}
for hk, v in pairs(reg_new) do
  local sep = string.find(hk, '\0', 1, true)
  local h = string.sub(hk, 1, sep - 1)
  local out = reg_out[h]
  if not out then out = {}; reg_out[h] = out end
  out[string.sub(hk, sep + 1)] = v
end
for h, map in pairs(reg_out) do hset_all(P .. h, map) end
local notes_out = {}
for iid, list in pairs(notes_new) do notes_out[iid] = cjson.encode(list) end
hset_all(P .. 'notes', notes_out)
if #open_gone > 0 then redis.call('HDEL', P .. 'open', unpack(open_gone)) end
if #closed_add > 0 then redis.call('ZADD', P .. 'closed', unpack(closed_add)) end
if #closed_rem > 0 then redis.call('ZREM', P .. 'closed', unpack(closed_rem)) end

local days = {}
for k, v in pairs(counters) do
  if v ~= 0 then
    local sep = string.find(k, '\0', 1, true)
    local day = string.sub(k, 1, sep - 1)
    redis.call('HINCRBY', P .. 'day:' .. day, string.sub(k, sep + 1), v)
    days[day] = true
  end
end
for day, _ in pairs(days) do
  redis.call('EXPIRE', P .. 'day:' .. day, batch.dayttl)
end

-- Closed incidents are forgotten after `keep` seconds (a bounded sweep per batch)
local old_closed = redis.call('ZRANGEBYSCORE', P .. 'closed', '-inf', NOW - batch.keep * 1000,
  'LIMIT', 0, 200)
if #old_closed > 0 then
  redis.call('HDEL', P .. 'inc', unpack(old_closed))
  redis.call('HDEL', P .. 'notes', unpack(old_closed))
  redis.call('ZREM', P .. 'closed', unpack(old_closed))
end

for b, ids in pairs(new_seen) do
  local key = P .. 'seen:' .. b
  redis.call('SADD', key, unpack(ids))
  redis.call('EXPIREAT', key, math.floor((b + 1) * batch.sb / 1000 + batch.ttl))
end

if #feed > 0 then
  local first = math.max(1, #feed - batch.feed + 1)
  redis.call('LPUSH', P .. 'feed', unpack(feed, first, #feed))
  redis.call('LTRIM', P .. 'feed', 0, batch.feed - 1)
end
-- Whatever was applied moves the version (not only batches that reach the live feed:
-- the newest entries of a batch may all be re-delivered duplicates).
if applied > 0 then
  local prev = tonumber(redis.call('HGET', P .. 'stats', 'last_event_ts') or '0')
  if last_ts <= prev then last_ts = prev end
  redis.call('HSET', P .. 'stats', 'last_applied_ms', NOW, 'last_event_ts', last_ts)
  redis.call('HINCRBY', P .. 'stats', 'applied', applied)
  redis.call('INCR', P .. 'version')
end
if dups > 0 then redis.call('HINCRBY', P .. 'stats', 'duplicates', dups) end
-- 5. A replay's scratch namespace lists every key written, so that it is expired and
--    wiped by name, without a SCAN of the keyspace (keep this list with the writes above)
if batch.reg then
  local written = {P .. 'inc', P .. 'open', P .. 'notes',
                   P .. 'closed', P .. 'feed', P .. 'stats', P .. 'version'}
  for h, _ in pairs(reg_fields) do written[#written + 1] = P .. h end
  for day, _ in pairs(days) do written[#written + 1] = P .. 'day:' .. day end
  for b, _ in pairs(new_seen) do written[#written + 1] = P .. 'seen:' .. b end
  redis.call('SADD', P .. batch.reg, unpack(written))
end
if #ARGV > 2 then
  redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 3))
end
return {applied, dups, dup_at}
