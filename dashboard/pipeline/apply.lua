-- Apply one batch of validated events to the city state, atomically, and
-- acknowledge their stream entries in the same step.
--
-- KEYS[1]  the events stream
-- ARGV[1]  consumer group
-- ARGV[2]  JSON: {p: key prefix, ttl: dedup seconds, keep: closed-incident
--          seconds, dayttl: day-hash seconds, sla: {category: minutes},
--          fb: fallback minutes, root: city area id, feed: feed size,
--          now: wall ms, ev: [[...event...], ...]}
-- ARGV[3..] stream entry ids to acknowledge
--
-- Every piece of state is a register decided by event time (a key
-- "<ts padded to 15 digits>|<rank>|<event_id>" that compares as a string),
-- so the result does not depend on arrival order, and applying an event
-- again changes nothing. Counters (per day) are derived from the incident
-- record: the record's old contribution is taken away and its new one added.
-- Returns {applied, duplicates}.

local batch = cjson.decode(ARGV[2])
local P = batch.p
local applied, dups = 0, 0
local feed = {}
local touched_days = {}

local function hash_to_table(flat)
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end

local function start_of(rec)
  return tonumber(rec.rts or rec.t0)
end

-- {"<day hash>\0<field>" = amount} of one incident record
local function contributions(rec)
  local out = {}
  local area = rec.area or batch.root
  if rec.rts then
    out[rec.rday .. '\0r|' .. area] = 1
    out[rec.rday .. '\0h|' .. rec.rhour .. '|' .. area] = 1
  end
  if rec.st == 'closed' and rec.sday then
    local secs = math.floor((tonumber(rec.sts) - start_of(rec)) / 1000)
    if secs < 0 then secs = 0 end
    out[rec.sday .. '\0c|' .. area] = 1
    out[rec.sday .. '\0s|' .. area] = secs
  end
  return out
end

local function apply_counters(old, new)
  local delta = {}
  for k, v in pairs(old) do delta[k] = (delta[k] or 0) - v end
  for k, v in pairs(new) do delta[k] = (delta[k] or 0) + v end
  for k, v in pairs(delta) do
    if v ~= 0 then
      local sep = string.find(k, '\0', 1, true)
      local day = string.sub(k, 1, sep - 1)
      redis.call('HINCRBY', P .. 'day:' .. day, string.sub(k, sep + 1), v)
      touched_days[day] = true
    end
  end
end

local function newer(key, old_key)
  return old_key == nil or key > old_key
end

-- e = {"i", eid, key, ts, day, hour, area, lon, lat, iid, status, stkey,
--      cat, src, sev, title, dept, sla, locrank}
local function apply_incident(e)
  local rkey = P .. 'inc:' .. e[10]
  local rec = hash_to_table(redis.call('HGETALL', rkey))
  local old = contributions(rec)
  local was_open = rec.st ~= nil and rec.st ~= 'closed'
  local ts, key = e[4], e[3]
  local set = {}
  if rec.t0 == nil or ts < tonumber(rec.t0) then set.t0 = ts end
  if newer(e[12], rec.stk) then
    set.st, set.stk, set.sts, set.sday = e[11], e[12], ts, e[5]
  end
  if e[11] == 'reported' and (rec.rts == nil or ts < tonumber(rec.rts)) then
    set.rts, set.rday, set.rhour = ts, e[5], e[6]
  end
  if e[7] ~= '' then
    local lk = e[19] .. key
    if newer(lk, rec.lk) then
      set.lk, set.area, set.lon, set.lat = lk, e[7], e[8], e[9]
    end
  end
  local names = {'cat', 'src', 'sev', 'title', 'dept', 'sla'}
  for i, name in ipairs(names) do
    local v = e[12 + i]
    if v ~= '' and newer(key, rec['k_' .. name]) then
      set[name] = v
      set['k_' .. name] = key
    end
  end
  local flat = {}
  for k, v in pairs(set) do
    rec[k] = tostring(v)
    flat[#flat + 1] = k
    flat[#flat + 1] = tostring(v)
  end
  if #flat > 0 then redis.call('HSET', rkey, unpack(flat)) end
  apply_counters(old, contributions(rec))
  if rec.st ~= 'closed' then
    local minutes = tonumber(rec.sla) or tonumber(batch.sla[rec.cat or '']) or batch.fb
    local start = start_of(rec)
    redis.call('HSET', P .. 'open', e[10], cjson.encode({
      area = rec.area or batch.root, lon = tonumber(rec.lon), lat = tonumber(rec.lat),
      cat = rec.cat or '', src = rec.src or '', sev = tonumber(rec.sev or '2'),
      st = rec.st, sts = tonumber(rec.sts), start = start,
      due = start + minutes * 60000, title = rec.title or '', dept = rec.dept or ''}))
    if not was_open then redis.call('PERSIST', rkey) end
  else
    redis.call('HDEL', P .. 'open', e[10])
    redis.call('EXPIRE', rkey, batch.keep)
  end
end

-- e = {"t", eid, key, ts, day, hour, area, lon, lat, segment, speed, free_flow}
local function apply_traffic(e)
  local old = redis.call('HGET', P .. 'seg', e[10])
  if old then
    local old_key = string.sub(old, 1, string.find(old, '\t', 1, true) - 1)
    if not newer(e[3], old_key) then return end
  end
  redis.call('HSET', P .. 'seg', e[10], table.concat(
    {e[3], e[7], e[8], e[9], e[11], e[12], e[4]}, '\t'))
end

-- e = {"r", eid, key, ts, day, hour, area, lon, lat, indicator, value}
local function apply_risk(e)
  local field = e[7] .. '|' .. e[10]
  local old = redis.call('HGET', P .. 'risk', field)
  if old then
    local old_key = string.sub(old, 1, string.find(old, '\t', 1, true) - 1)
    if not newer(e[3], old_key) then return end
  end
  redis.call('HSET', P .. 'risk', field, e[3] .. '\t' .. e[11] .. '\t' .. e[4])
end

local appliers = {i = apply_incident, t = apply_traffic, r = apply_risk}
local last_ts = 0
for _, e in ipairs(batch.ev) do
  local seen = P .. 'seen:' .. e[2]
  if redis.call('EXISTS', seen) == 1 then
    dups = dups + 1
  else
    appliers[e[1]](e)
    redis.call('SET', seen, '1', 'EX', batch.ttl)
    applied = applied + 1
    feed[#feed + 1] = e[#e]
    if e[4] > last_ts then last_ts = e[4] end
  end
end

for day, _ in pairs(touched_days) do
  redis.call('EXPIRE', P .. 'day:' .. day, batch.dayttl)
end
if #feed > 0 then
  local first = math.max(1, #feed - batch.feed + 1)
  redis.call('LPUSH', P .. 'feed', unpack(feed, first, #feed))
  redis.call('LTRIM', P .. 'feed', 0, batch.feed - 1)
  redis.call('HINCRBY', P .. 'stats', 'applied', applied)
  redis.call('HSET', P .. 'stats', 'last_applied_ms', batch.now)
  local prev = tonumber(redis.call('HGET', P .. 'stats', 'last_event_ts') or '0')
  if last_ts > prev then redis.call('HSET', P .. 'stats', 'last_event_ts', last_ts) end
  redis.call('INCR', P .. 'version')
end
if dups > 0 then redis.call('HINCRBY', P .. 'stats', 'duplicates', dups) end
if #ARGV > 2 then
  redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 3))
end
return {applied, dups}
