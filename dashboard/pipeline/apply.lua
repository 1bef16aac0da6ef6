-- Apply one batch of validated events to the city state, atomically, and
-- acknowledge their stream entries in the same step.
--
-- KEYS[1]  the events stream (on a cluster where it is in another slot: a state key,
--          and the caller acknowledges the entries after the script)
-- ARGV[1]  consumer group
-- ARGV[2]  MessagePack (cheaper to unpack than JSON): {p: key prefix, ttl: dedup seconds,
--          keep: closed-incident seconds, dayttl: day-hash seconds, rkttl: ranking-hash
--          seconds, rw: response window ms, sla: {category: minutes},
--          fb: fallback minutes, root: city area id, feed: feed size,
--          now: wall ms, ev: [{...event...}, ...], reg: (a replay only) name of the
--          set, under the prefix, that lists every key this script writes}
--          Each event is a named record (dashboard/kinds): id, key (its register key),
--          ts, feed (JSON; left out when '', as an incident row's other '' fields are),
--          and `a`, its applier: 'inc' (an incident update) or
--          'reg' (a register: hash `h`, field `f`, value `v`, kept when its key is newer).
--          A register row may also carry its record's level (`lv`, stored first in `v`) and
--          `lf` (entering that level is news: the live feed gets the record, with `from`,
--          the level before, and `kf`, the name of the field `f`), or a group `g` whose
--          level is decided by the group's records together (`gm[h]`: the model of the
--          hash: indicator weights `w`, thresholds `t`, level names `l`; the risk score).
--          `ro` (risk work orders, 未诉先办; absent when off): `lv` the index in `l` of the
--          level whose entry opens one, `c` indicator -> category, `cn` category -> name,
--          `ln` level -> name. A risk row then carries `po`, its area's order details:
--          street `str`, `lon`/`lat`, `day`/`hour` of its time, department `dept` and
--          SLA minutes `sla` (a routing rule's, or ''), the area's name `n`.
-- ARGV[3..] stream entry ids to acknowledge
--
-- Every piece of state is a register decided by event time (a key
-- "<ts padded to 15 digits>|<rank>|<event_id>" that compares as a string),
-- so the result does not depend on arrival order, and applying an event
-- again changes nothing. Counters (per day) are derived from the incident
-- record: the record's old contribution is taken away and its new one added.
-- The rankings' counters (hash `rk:<report day>`, fields `<metric>|<street>|<department>`)
-- are derived the same way, so they too are exactly-once whatever the order.
-- Reads and writes are made once per batch (HMGET before, HSET after), since
-- each redis.call costs more than the Lua around it.
-- Returns {applied, duplicates, positions of the duplicates in the batch (1-based)}.

local batch = cmsgpack.unpack(ARGV[2])
local P = batch.p
local events = batch.ev
-- A row leaves out its fields that are '' (less to send and unpack): any field an
-- incident row leaves out reads as '' (a register row's: nil; its `feed` is read as such)
local BLANK = {__index = function() return '' end}
for _, e in ipairs(events) do
  if e.a == 'inc' then setmetatable(e, BLANK) end
end
local NOW = batch.now
local CHANGES_KEPT = 1000  -- versions in the change log (`chg`)

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
-- A group's records (its indicators), built once per group: {indicator, weight pair,
-- field, 'hash\0field'}, in the order of `pairs` over the model's weights
local group_cache = {}
local function group_fields(h, g)
  local gk = h .. '\0' .. g
  local list = group_cache[gk]
  if not list then
    list = {}
    for ind, pair in pairs(batch.gm[h].w) do
      local f = g .. '|' .. ind
      list[#list + 1] = {ind, pair, f, h .. '\0' .. f}
    end
    group_cache[gk] = list
  end
  return list
end
local inc_raw, reg_fields, reg_keys, reg_seen = {}, {}, {}, {}  -- (reg_keys: 'hash\0field')
local order_n, order_dirty = {}, {}  -- area -> number of its latest risk work order
do
  local ids, seen = {}, {}
  for i, e in ipairs(events) do
    if skip[i] then
    elseif e.a == 'inc' then
      if not seen[e.iid] then seen[e.iid] = true; ids[#ids + 1] = e.iid end
    else
      local list, keys = reg_fields[e.h], reg_keys[e.h]
      if not list then
        list, keys = {}, {}
        reg_fields[e.h], reg_keys[e.h] = list, keys
      end
      local hk = e.h .. '\0' .. e.f
      if not reg_seen[hk] then
        reg_seen[hk] = true
        list[#list + 1], keys[#keys + 1] = e.f, hk
      end
      if e.g and batch.gm and batch.gm[e.h] then  -- a group's records
        for _, x in ipairs(group_fields(e.h, e.g)) do
          if not reg_seen[x[4]] then
            reg_seen[x[4]] = true
            list[#list + 1], keys[#keys + 1] = x[3], x[4]
          end
        end
      end
    end
  end
  -- 未诉先办: each area's latest risk work order (`riskord`: area -> its number), read
  -- with the incidents so that the check "is one open" and the opening are one step
  if batch.ro then
    local areas, seen_area = {}, {}
    for i, e in ipairs(events) do
      if e.po and not skip[i] and not seen_area[e.g] then
        seen_area[e.g] = true; areas[#areas + 1] = e.g
      end
    end
    if #areas > 0 then
      local values = redis.call('HMGET', P .. 'riskord', unpack(areas))
      for j, area in ipairs(areas) do
        local n = tonumber(values[j])
        if n then
          order_n[area] = n
          local iid = 'risk:' .. area .. ':' .. n
          if not seen[iid] then seen[iid] = true; ids[#ids + 1] = iid end
        end
      end
    end
  end
  hmget_into(inc_raw, P .. 'inc', ids)
end
-- every register (hash, field) the batch touches: its stored value, by 'hash\0field'
local reg_old = {}
for h, fields in pairs(reg_fields) do
  local values, keys = redis.call('HMGET', P .. h, unpack(fields)), reg_keys[h]
  for j, hk in ipairs(keys) do
    if values[j] then reg_old[hk] = values[j] end  -- (a group's absent records: nothing)
  end
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
local contributed = {}  -- an incident's contribution after its last event in this batch
local counters = {}

local function newer(key, old_key)
  return old_key == nil or key > old_key
end

-- The deadline: the SLA counted from the report, or from the latest reopening
local function due_of(rec)
  local minutes = tonumber(rec.sla) or tonumber(batch.sla[rec.cat or '']) or batch.fb
  local start = rec.rts or rec.t0
  if rec.rclk and rec.rclk > start then start = rec.rclk end
  return start + minutes * 60000
end

-- Keys are '<hash>\0<field>': 'day:<day>' (today's numbers) or 'rk:<day>' (rankings)
local function contributions(rec)
  local out = {}
  if rec.mem then return out end  -- a report merged into another's case: the case counts
  local area = rec.area or batch.root
  if rec.rts then
    out['day:' .. rec.rday .. '\0r|' .. area] = 1
    out['day:' .. rec.rday .. '\0h|' .. rec.rhour .. '|' .. area] = 1
    -- rankings, by report day: n received, a responded in time, c closed, o closed on
    -- time, w reopened at least once, f followed up, y satisfied (or basically)
    local R = 'rk:' .. rec.rday .. '\0'
    local tail = '|' .. (rec.str or batch.root) .. '|' .. (rec.dept or '')
    out[R .. 'n' .. tail] = 1
    if rec.ack and rec.ack - rec.rts <= batch.rw then out[R .. 'a' .. tail] = 1 end
    if rec.st == 'closed' then
      out[R .. 'c' .. tail] = 1
      if rec.sts <= due_of(rec) then out[R .. 'o' .. tail] = 1 end
    end
    if (rec.nre or 0) > 0 then out[R .. 'w' .. tail] = 1 end
    if rec.sat then
      out[R .. 'f' .. tail] = 1
      if rec.sat ~= 'dissatisfied' then out[R .. 'y' .. tail] = 1 end
    end
  end
  if rec.st == 'closed' then
    local secs = math.floor((rec.sts - (rec.rts or rec.t0)) / 1000)
    if secs < 0 then secs = 0 end
    out['day:' .. rec.sday .. '\0c|' .. area] = 1
    out['day:' .. rec.sday .. '\0s|' .. area] = secs
  end
  return out
end

-- Statuses that show the handling side acted (the response, for the response rate)
local RESPONDED = {in_progress = true, resolved = true, verified = true, closed = true}

local function count(contrib, sign)
  for k, v in pairs(contrib) do counters[k] = (counters[k] or 0) + sign * v end
end

-- The record changed: its contribution to the counters moves from `old` to its new one
local function recount(iid, rec, old)
  local new = contributions(rec)
  contributed[iid] = new
  count(old, -1)
  count(new, 1)
  dirty_inc[iid] = true
end

-- e = {a='inc', id, key, ts, day, hour, area, str (its street), lon, lat, iid, st (status),
--      stk (its key), ast/astk (a second status: routing's dispatch), cat, src, sev, title,
--      dept, sla, sat (a follow-up's answer), rby (who resolved it), loc (place rank),
--      hist, feed}
-- An update from the command stream may have no status ('' : a note) and carries a
-- history entry (JSON, `hist`) that is appended to the incident's action history.
-- Order-free facts: `ack` the earliest response, `nre` how many reopenings, `rclk` the
-- latest reopening (the SLA clock restarts there).
local NAMES = {'cat', 'src', 'sev', 'title', 'dept', 'sla', 'sat', 'rby'}
local NAME_KEYS = {}  -- each name's key field ('k_<name>')
for i, name in ipairs(NAMES) do NAME_KEYS[i] = 'k_' .. name end
-- New reports (incident id -> true) to place into cases and hotspots, where a placed one
-- was before it moved to an earlier report event ({mt, mx, my, mc}), reports split off
local merge_new, merge_moved, merge_split = {}, {}, {}
-- Open incidents set or removed in `open` (the change log's `o`, section 4)
local open_changed = {}
-- Reports stored before this batch whose report moved in it: where they were
local hot_moved = {}
local DAY_MS = 86400000
-- The GEO indexes of reports, per category and bucket of report time: merging's (`mg`,
-- buckets of four windows) and hotspots' (`hg`, buckets of its window of days)
-- (buckets wider than the windows: a window spans fewer of them, and a search costs
-- what the nearby members cost, not what the whole set holds)
local INDEXES = {mg = 4 * batch.mw, hg = math.max(batch.hd, 1) * DAY_MS}
local function bucket(index, cat, t)
  return P .. index .. ':' .. cat .. ':' .. math.floor(t / INDEXES[index])
end
local geo_keys = {}  -- the GEO keys written (for a replay's list of keys)
local function apply_incident(e)
  local iid, ts, key = e.iid, e.ts, e.key
  local rec = incidents[iid]
  if not rec then
    local raw = inc_raw[iid]
    rec = raw and cjson.decode(raw) or {}
    incidents[iid] = rec
  end
  local old = contributed[iid] or contributions(rec)
  if rec.t0 == nil or ts < rec.t0 then rec.t0 = ts end
  if e.st ~= '' and newer(e.stk, rec.stk) then
    rec.st, rec.stk, rec.sts, rec.sday = e.st, e.stk, ts, e.day
  end
  if e.ast ~= '' and newer(e.astk, rec.stk) then
    rec.st, rec.stk, rec.sts, rec.sday = e.ast, e.astk, ts, e.day
  end
  if RESPONDED[e.st] and (rec.ack == nil or ts < rec.ack) then rec.ack = ts end
  if e.st == 'reopened' then  -- counted once per event, even if applied again
    rec.reo = rec.reo or {}
    if not rec.reo[e.stk] then
      rec.reo[e.stk] = 1
      rec.nre = (rec.nre or 0) + 1
    end
    if rec.rclk == nil or ts > rec.rclk then rec.rclk = ts end
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
      rec.lk, rec.area, rec.str, rec.lon, rec.lat = lk, e.area, e.str, e.lon, e.lat
    end
  end
  for i, name in ipairs(NAMES) do
    local v = e[name]
    if v ~= '' then
      local k = NAME_KEYS[i]
      if newer(key, rec[k]) then
        rec[name] = v
        rec[k] = key
      end
    end
  end
  -- its report, for merging: the earliest report event (by time, then event id)
  -- (not a work order the script opened itself: source `proactive`)
  if (batch.mm > 0 or batch.hk > 0) and e.st == 'reported' and e.lon ~= '' and e.cat ~= ''
      and e.src ~= 'proactive'
      and (rec.mt == nil or ts < rec.mt or (ts == rec.mt and e.id < rec.me)) then
    if rec.mt then
      local was = {mt = rec.mt, mx = rec.mx, my = rec.my, mc = rec.mc}
      if rec.case and not merge_moved[iid] then merge_moved[iid] = was end
      if not merge_new[iid] and not hot_moved[iid] then hot_moved[iid] = was end
      for index, _ in pairs(INDEXES) do redis.call('ZREM', bucket(index, rec.mc, rec.mt), iid) end
    end
    rec.mt, rec.me, rec.ms, rec.mc, rec.mx, rec.my = ts, e.id, e.src, e.cat, e.lon, e.lat
    rec.mst = e.str ~= '' and e.str or nil  -- the street of its report (a hotspot's cause)
    rec.mr = (e.hr or '') ~= '' and e.hr or nil  -- and where that cause's case goes
    merge_new[iid] = true
  end
  if e.spl and e.spl ~= '' then merge_split[#merge_split + 1] = e.spl end
  recount(iid, rec, old)
end

local reg_new = {}
local feed = {}
local function packed_key(packed)
  return string.sub(packed, 1, string.find(packed, '\t', 1, true) - 1)
end

-- A stored record's own level (`"lv":"..."` in its JSON), nil when it has none
local function level_of(packed)
  if not packed then return nil end
  return string.match(packed, '"lv":"([%w_]*)"')
end

-- The level of a group of records (an area's indicators): the weighted, saturated sum of
-- their values (each term rounded to 2 decimals, at most 100) against the thresholds.
-- The first level when no weighted record is there. Returns the level and the score.
local value_in = {}  -- a stored record -> its value (a group's level is scored twice a row)
-- One indicator of a group: its value and points (rounded to 2 decimals), nil when the
-- group has no record of it or the model does not weigh it
local function points_of(hk, pair)
  local packed = reg_new[hk] or reg_old[hk]
  local v = nil
  if packed then
    v = value_in[packed]
    if v == nil then
      local at = string.find(packed, '"value":', 1, true)  -- (a plain find: fast)
      v = at and tonumber(string.match(packed, '^[^,}]+', at + 8)) or false
      value_in[packed] = v
    end
  end
  if not v or pair[1] <= 0 then return nil end
  local r = math.max(v, 0) / pair[2]
  if r > 1 then r = 1 end
  return v, math.floor(pair[1] * r * 100 + 0.5) / 100
end

local function group_level(h, g)
  local model = batch.gm[h]
  local total, scored = 0, false
  for _, x in ipairs(group_fields(h, g)) do
    local v, p = points_of(x[4], x[2])
    if v then
      scored = true
      total = total + p
    end
  end
  if not scored then return model.l[1], nil end
  if total > 100 then total = 100 end
  local index = 1
  for _, t in ipairs(model.t) do
    if total >= t then index = index + 1 end
  end
  return model.l[index], total
end

-- 未诉先办: an area's indicators with their points, and its categories' sums, largest first
local function round2(x) return math.floor(x * 100 + 0.5) / 100 end
local function explain(h, g, level, score)
  local ro = batch.ro
  local top, sums = {}, {}
  for _, x in ipairs(group_fields(h, g)) do
    local ind = x[1]
    local v, p = points_of(x[4], x[2])
    if v then
      local c = ro.c[ind] or 'other'
      top[#top + 1] = {i = ind, c = c, v = v, p = p}
      sums[c] = (sums[c] or 0) + p
    end
  end
  local function larger(a, b)
    if a.p ~= b.p then return a.p > b.p end
    return (a.i or a.c) < (b.i or b.c)
  end
  table.sort(top, larger)
  local cats = {}
  for c, p in pairs(sums) do cats[#cats + 1] = {c = c, p = round2(p)} end
  table.sort(cats, larger)
  while #top > 5 do table.remove(top) end
  while #cats > 3 do table.remove(cats) end
  return {lv = level, score = score or 0, cats = cats, top = top}
end

-- The area's risk work order when one is open (its record), else nil
local function open_order(area)
  local n = order_n[area]
  if not n then return nil end
  local iid = 'risk:' .. area .. ':' .. n
  local rec = incidents[iid]
  if not rec then
    local raw = inc_raw[iid]
    if not raw then return nil end  -- closed and forgotten
    rec = cjson.decode(raw)
    incidents[iid] = rec
  end
  if rec.st == 'closed' then return nil end
  return rec, iid
end

-- What an order says while it is open: the level, the score, what drives it (the latest
-- readings decide, so the same readings in any order give the same order)
local function describe_order(rec, e, level, score)
  local why = explain(e.h, e.g, level, score)
  local ro = batch.ro
  local parts = {}
  for _, c in ipairs(why.cats) do
    parts[#parts + 1] = (ro.cn[c.c] or c.c) .. ' ' .. string.format('%.1f', c.p)
  end
  rec.why = why
  rec.title = e.po.n .. ' ' .. (ro.ln[level] or level) .. ' ' .. string.format('%.1f', score or 0)
    .. ' · ' .. table.concat(parts, ' · ')
  rec.sev = level == batch.gm[e.h].l[#batch.gm[e.h].l] and '4' or '3'
end

local LEVEL_RANK = {}
local function risk_order(e, before, after, score)
  local model = batch.gm[e.h]
  if not LEVEL_RANK[e.h] then
    local ranks = {}
    for i, name in ipairs(model.l) do ranks[name] = i end
    LEVEL_RANK[e.h] = ranks
  end
  local rank = LEVEL_RANK[e.h]
  local rec, iid = open_order(e.g)
  if rec then  -- one open order per area: it follows the area's readings
    describe_order(rec, e, after, score)
    dirty_inc[iid] = true
    return
  end
  if rank[after] < batch.ro.lv or rank[before] >= batch.ro.lv then return end
  local n = (order_n[e.g] or 0) + 1
  order_n[e.g], order_dirty[e.g] = n, n
  iid = 'risk:' .. e.g .. ':' .. n
  local p, ts15 = e.po, string.sub(e.key, 1, 15)
  local key = ts15 .. '|' .. iid
  local routed = p.dept ~= ''
  apply_incident({a = 'inc', id = iid, key = key, ts = e.ts, day = p.day, hour = p.hour,
    area = e.g, str = p.str, lon = p.lon, lat = p.lat, iid = iid, st = 'reported',
    stk = ts15 .. '|0|' .. iid, ast = routed and 'dispatched' or '',
    astk = routed and (ts15 .. '|1|' .. iid) or '', cat = 'risk_order', src = 'proactive',
    sev = '', title = '', dept = p.dept, sla = p.sla, sat = '', rby = '', loc = '1', hist = ''})
  rec = incidents[iid]
  describe_order(rec, e, after, score)
  feed[#feed + 1] = cjson.encode({id = iid, kind = 'incident', ts = e.ts, area = e.g,
    incident_id = iid, status = 'reported', category = 'risk_order', source = 'proactive',
    severity = rec.sev, title = rec.title})
end

-- A register's live-feed item starts with its id and kind
local function feed_head(e)
  return '{"id":"' .. e.id .. '","kind":"' .. e.k .. '",'
end

-- e = {a='reg', id, key, ts, h (hash), f (field), v (the record, JSON), feed, k (kind),
--      lv, lf, kf, g}: the latest by event time is kept, stored as "<key>\t<record>" so
-- that the key compares cheaply. A level it enters that is news goes to the live feed.
local function apply_register(e)
  local hk = e.h .. '\0' .. e.f
  local old = reg_new[hk] or reg_old[hk]
  if old and not newer(e.key, packed_key(old)) then return end
  local model = e.g and batch.gm and batch.gm[e.h]
  local before = model and group_level(e.h, e.g)
  if e.lv then
    reg_new[hk] = e.key .. '\t{"lv":"' .. e.lv .. '",' .. string.sub(e.v, 2)
  else
    reg_new[hk] = e.key .. '\t' .. e.v
  end
  if model then
    local after, score = group_level(e.h, e.g)
    if after ~= before then
      feed[#feed + 1] = feed_head(e) .. '"from":"' .. before .. '","lv":"' .. after .. '","score":'
        .. (score or 0) .. ',' .. string.sub(e.v, 2)
    end
    if e.po then risk_order(e, before, after, score) end
  elseif e.lf then
    local was = level_of(old)
    if was ~= e.lv then
      local named = e.kf and ('"' .. e.kf .. '":"' .. e.f .. '",') or ''
      feed[#feed + 1] = feed_head(e) .. '"from":"' .. (was or '') .. '","lv":"' .. e.lv .. '",'
        .. named .. string.sub(e.v, 2)
    end
  end
end

-- 3. Apply in order, in memory
local appliers = {inc = apply_incident, reg = apply_register}
local applied, dups, last_ts = 0, 0, 0
local dup_at = {}  -- positions (1-based) of the duplicates, for the worker's counts by kind
local new_seen = {}
local reported_at = {}  -- a new report's place in the live feed (to name the case it joins)
for i, e in ipairs(events) do
  if skip[i] then
    dups = dups + 1
    dup_at[#dup_at + 1] = i
  else
    appliers[e.a](e)
    applied = applied + 1
    if (e.feed or '') ~= '' then
      local rec = e.a == 'inc' and incidents[e.iid]
      if rec and rec.area and e.area == '' then  -- a status change without a place: its area
        feed[#feed + 1] = string.gsub(e.feed, '"area":""', '"area":"' .. rec.area .. '"', 1)
      else
        feed[#feed + 1] = e.feed
        if merge_new[e.iid] then reported_at[e.iid] = #feed end
      end
    end
    if e.ts > last_ts then last_ts = e.ts end
    local b = math.floor(e.ts / batch.sb)
    new_seen[b] = new_seen[b] or {}
    table.insert(new_seen[b], e.id)
  end
end

-- 3a. The reports' indexes (多源合并 and 未诉先办): every report of a category with a place,
--    by its earliest report event
local function load(iid)
  local rec = incidents[iid]
  if rec == nil then
    local raw = inc_raw[iid]
    if raw == nil then raw = redis.call('HGET', P .. 'inc', iid) end
    if not raw then return nil end
    rec = cjson.decode(raw)
    incidents[iid] = rec
  end
  return rec
end
local function before(a, ai, b, bi)  -- report order
  if a.mt ~= b.mt then return a.mt < b.mt end
  return ai < bi
end
-- Reports in `index` of category `at.mc` within `radius` metres of (at.mx, at.my), reported
-- in [lo, hi], `iid` aside
local function near(index, radius, at, iid, lo, hi)
  local W = INDEXES[index]
  local found, missing = {}, {}
  for t = lo - lo % W, hi, W do
    for _, other in ipairs(redis.call('GEOSEARCH', bucket(index, at.mc, t), 'FROMLONLAT',
        at.mx, at.my, 'BYRADIUS', radius, 'm')) do
      if other ~= iid then
        found[#found + 1] = other
        if incidents[other] == nil and inc_raw[other] == nil then
          missing[#missing + 1] = other
        end
      end
    end
  end
  hmget_into(inc_raw, P .. 'inc', missing)  -- the records not read yet, in one call
  local out = {}
  for _, other in ipairs(found) do
    local o = load(other)
    if o and o.mt and o.mt >= lo and o.mt <= hi then out[#out + 1] = other end
  end
  return out
end
-- A case's reports in report order
local function sort_reports(list)
  table.sort(list, function(a, b)
    if a.t ~= b.t then return a.t < b.t end
    return a.i < b.i
  end)
end
-- Put the batch's new reports into an index (at their stored, rounded position, so that
-- every search measures the same distances)
local function index_reports(index, keep_ms)
  for iid, _ in pairs(merge_new) do
    local rec = load(iid)
    local key = bucket(index, rec.mc, rec.mt)
    redis.call('GEOADD', key, rec.mx, rec.my, iid)
    if not geo_keys[key] then  -- kept while a report may still arrive that looks into it
      -- (the bucket's end, or now for a late one, + the window + how long ids are remembered)
      local last = math.max((math.floor(rec.mt / INDEXES[index]) + 1) * INDEXES[index], NOW)
      redis.call('EXPIREAT', key, math.floor((last + keep_ms) / 1000 + batch.ttl))
      geo_keys[key] = true
    end
    local pos = redis.call('GEOPOS', key, iid)[1]
    rec.mx, rec.my = pos[1], pos[2]
  end
end

-- 3b. 多源合并: reports of one category within `mm` metres and `mw` ms become one case.
--    The canonical rule (by report time, then incident id, the "report order"): a report
--    joins the case of the earliest open case head (a report heading its own case, not
--    split off) of its category that lies within `mm` metres and `mw` ms before it;
--    otherwise it heads a new case, named by its own incident id. Whether a report heads
--    a case depends only on reports before it in report order, so a late-arriving earlier
--    report re-decides the reports after it (a worklist in report order), and the state
--    is the one that in-order arrival gives. A report split off (`msp`) is its own case
--    and takes no other. Neighbours: GEOSEARCH in `mg:<category>:<window bucket>`.
if batch.mm > 0 and (next(merge_new) or #merge_split > 0) then
  local W, R = batch.mw, batch.mm
  local function heads(rec, iid) return rec.case == iid and not rec.msp end
  -- its case: the earliest head before it (`hood`: its neighbours within a window each side)
  local function choose(rec, iid, hood)
    if rec.msp then return iid end
    local best, best_rec = nil, nil
    for _, other in ipairs(hood) do
      local o = incidents[other]
      if heads(o, other) and before(o, other, rec, iid) and
          (best == nil or before(o, other, best_rec, best)) then
        best, best_rec = other, o
      end
    end
    return best or iid
  end
  local function report_of(rec, iid)
    return {i = iid, e = rec.me, s = rec.ms, t = rec.mt}
  end
  -- move a report to another case: its own contribution and both cases' report lists
  local function set_case(rec, iid, case)
    local old = contributed[iid] or contributions(rec)
    if rec.case then
      local head = load(rec.case)
      if head and head.rl then
        for j = #head.rl, 1, -1 do
          if head.rl[j].i == iid then table.remove(head.rl, j) end
        end
        dirty_inc[rec.case] = true
      end
    end
    rec.case = case
    rec.mem = case ~= iid or nil
    local head = load(case)
    head.rl = head.rl or {}
    head.rl[#head.rl + 1] = report_of(rec, iid)
    sort_reports(head.rl)
    dirty_inc[case] = true
    recount(iid, rec, old)
  end
  index_reports('mg', W)
  local queue, force = {}, {}
  for iid, _ in pairs(merge_new) do
    queue[iid] = true
    local was = merge_moved[iid]
    if was then  -- moved earlier: what came after its old report decides again, and so
      force[iid] = true  -- does what comes after its new one
      for _, other in ipairs(near('mg', R, was, iid, was.mt, was.mt + W)) do
        queue[other] = true
      end
    end
  end
  for _, iid in ipairs(merge_split) do
    local rec = load(iid)
    if rec and rec.mt and not rec.msp then
      rec.msp = true  -- it heads no case now: the reports after it decide again
      queue[iid] = true
      force[iid] = true
      dirty_inc[iid] = true
    end
  end
  while true do  -- the worklist, earliest report first
    local iid, rec = nil, nil
    for q, _ in pairs(queue) do
      local r = incidents[q]
      if iid == nil or before(r, q, rec, iid) then iid, rec = q, r end
    end
    if iid == nil then break end
    queue[iid] = nil
    local forced = force[iid]
    force[iid] = nil
    local was = rec.case ~= nil and heads(rec, iid)
    local hood = near('mg', R, rec, iid, rec.mt - W, rec.mt + W)  -- one search, both sides
    local case = choose(rec, iid, hood)
    if case ~= rec.case or forced then set_case(rec, iid, case) end
    if heads(rec, iid) ~= was or forced then  -- the reports after may choose differently
      for _, other in ipairs(hood) do
        if before(rec, iid, incidents[other], other) then queue[other] = true end
      end
    end
  end
end

-- A report merged into another's case says so in the live feed (`case`)
for iid, at in pairs(reported_at) do
  local rec = incidents[iid]
  if rec.mem then
    feed[at] = string.gsub(feed[at], '^{', '{"case":"' .. rec.case .. '",', 1)
  end
end

-- 3c. 未诉先办 (hotspots): a report is hot when `hk` or more reports of its category lie
--    within `hm` metres of it and `hd` days before it (itself counted). A hot report links
--    itself and the reports of that neighbourhood (`hl`) to the open proactive case of its
--    cause (category and the street of its report; opened then if there is none:
--    `proactive:<category>:<street>:<n>`, the open one of each cause in hash `hot:open`).
--    A case's reports count the hot reports linking each (`n`; `h`: itself hot), so that a
--    report re-decided takes back exactly what it linked. Re-decided in a batch: its new
--    reports, reports moved to an earlier report, and every report whose window held either
--    (before or after the move); so the hot reports, what they link and the cases are a
--    function of the reports, whatever the order they came in. A closed case keeps what it
--    had; an open one that no hot report links any more (and nobody acted on) goes.
if batch.hk > 0 and (next(merge_new) or next(hot_moved)) then
  local K, RH, D = batch.hk, batch.hm, batch.hd * DAY_MS
  index_reports('hg', D)
  local links = {}  -- case id -> {report id -> its entry}, for the cases changed
  local created, dropped = {}, {}
  local function links_of(pid)
    local map = links[pid]
    if map == nil then
      local case = load(pid)
      if not case or case.st == 'closed' then return nil end
      map = {}
      for _, x in ipairs(case.rl or {}) do
        x.n = x.n or 1
        map[x.i] = x
      end
      links[pid] = map
    end
    return map
  end
  local open_of = {}  -- cause -> its open case (false: none), read once a batch
  local function open_pid(cause)
    local pid = open_of[cause]
    if pid == nil then
      pid = redis.call('HGET', P .. 'hot:open', cause)
      open_of[cause] = pid
    end
    return pid or nil
  end
  local function open_case(cause, rec)
    local pid = open_pid(cause)
    if pid then return pid end
    pid = 'proactive:' .. rec.mc .. ':' .. (rec.mst or batch.root) .. ':'
      .. redis.call('HINCRBY', P .. 'hot:n', cause, 1)
    redis.call('HSET', P .. 'hot:open', cause, pid)
    open_of[cause] = pid
    local street = rec.mst or batch.root
    local case = {src = 'proactive', cat = rec.mc, area = street, str = street,
                  st = 'reported', cause = cause, rl = {}}
    if rec.mr then  -- routed (分类转办) by its cause's rule: dispatched when it opens
      local dept, sla, note = string.match(rec.mr, '^([^\t]*)\t([^\t]*)\t(.*)$')
      case.dept, case.sla, case.rnote = dept, sla ~= '' and sla or nil, note
    end
    incidents[pid] = case
    created[pid] = true
    return pid
  end
  local function take(pid, iid, list, sign)  -- iid's links to case pid: +1 or -1 each
    local map = links_of(pid)
    if not map then return end  -- closed (it keeps what it had) or forgotten
    for k = 0, #list do
      local other = k == 0 and iid or list[k]
      local x = map[other]
      if not x then
        local r = incidents[other]
        x = {i = other, e = r.me, s = r.ms, t = r.mt, n = 0}
        map[other] = x
      end
      x.n = x.n + sign
      if k == 0 then x.h = sign > 0 or nil end
      if x.n <= 0 then map[other] = nil end
    end
  end
  local function decide(iid)
    local rec = load(iid)
    if not rec or not rec.mt then return end
    local hood = near('hg', RH, rec, iid, rec.mt - D, rec.mt)
    table.sort(hood)
    local pid = nil
    if #hood + 1 >= K then pid = open_case(rec.mc .. '|' .. (rec.mst or batch.root), rec) end
    if pid == rec.hot and cjson.encode(hood) == cjson.encode(rec.hl or {}) then return end
    if rec.hot then take(rec.hot, iid, rec.hl or {}, -1) end
    if pid then take(pid, iid, hood, 1) end
    rec.hot, rec.hl = pid, pid and hood or nil
    dirty_inc[iid] = true
  end
  local todo = {}
  for iid, _ in pairs(merge_new) do
    local rec = load(iid)
    todo[iid] = true
    for _, x in ipairs(near('hg', RH, rec, iid, rec.mt, rec.mt + D)) do todo[x] = true end
  end
  for iid, was in pairs(hot_moved) do
    todo[iid] = true
    for _, x in ipairs(near('hg', RH, was, iid, was.mt, was.mt + D)) do todo[x] = true end
  end
  local order = {}
  for iid, _ in pairs(todo) do order[#order + 1] = iid end
  table.sort(order)
  for _, iid in ipairs(order) do decide(iid) end
  -- the cases changed: their report lists, and the time and place of the earliest hot report
  for pid, map in pairs(links) do
    local case = incidents[pid]
    local old = contributed[pid] or contributions(case)
    local list = {}
    for other, x in pairs(map) do
      local r = incidents[other]
      if r and merge_new[other] then x.e, x.s, x.t = r.me, r.ms, r.mt end
      list[#list + 1] = x
    end
    sort_reports(list)
    case.rl = list
    local first = nil
    for _, x in ipairs(list) do
      if x.h then first = x; break end
    end
    local untouched = case.stk == case.own  -- its own status still: nobody acted on it
    if first == nil and untouched then  -- nothing links it: as if it had never opened
      count(old, -1)
      contributed[pid] = {}
      dirty_inc[pid] = nil
      dropped[#dropped + 1] = pid
      if open_pid(case.cause) == pid then
        redis.call('HDEL', P .. 'hot:open', case.cause)
        open_of[case.cause] = false
        local n = redis.call('HGET', P .. 'hot:n', case.cause)
        if n and string.sub(pid, -#n - 1) == ':' .. n then  -- its number is free again
          redis.call('HINCRBY', P .. 'hot:n', case.cause, -1)
        end
      end
    else
      if first then
        local r = load(first.i)
        case.rts = r.rts or r.mt
        case.rday, case.rhour, case.t0 = r.rday, r.rhour, case.rts
        case.lon, case.lat = tonumber(r.mx), tonumber(r.my)
        if untouched then
          local routed = (case.dept or '') ~= ''
          case.st = routed and 'dispatched' or 'reported'
          case.stk = string.format('%015d|%d|', case.rts, routed and 1 or 0) .. pid
          case.own, case.sts, case.sday = case.stk, case.rts, case.rday
        end
      end
      recount(pid, case, old)
      if created[pid] and case.rnote then
        notes_new[pid] = {{ts = case.rts, action = 'dispatch', user = 'routing',
                           note = case.rnote, department = case.dept}}
      end
      if created[pid] then
        feed[#feed + 1] = cjson.encode({id = pid, kind = 'incident', ts = case.rts, area = case.area,
          incident_id = pid, status = 'reported', category = case.cat, source = 'proactive'})
      end
    end
  end
  if #dropped > 0 then
    for _, pid in ipairs(dropped) do open_changed[#open_changed + 1] = pid end
    redis.call('HDEL', P .. 'inc', unpack(dropped))
    redis.call('HDEL', P .. 'open', unpack(dropped))
    redis.call('HDEL', P .. 'notes', unpack(dropped))
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
  if rec.cause and rec.st == 'closed' and redis.call('HGET', P .. 'hot:open', rec.cause) == iid
  then  -- a closed proactive case: the next hot report of its cause opens a new one
    redis.call('HDEL', P .. 'hot:open', rec.cause)
  end
  if rec.mem then
    open_gone[#open_gone + 1] = iid  -- merged into another case: not an open case itself
  elseif rec.st ~= 'closed' then
    open_out[iid] = cjson.encode({
      area = rec.area or batch.root, lon = tonumber(rec.lon), lat = tonumber(rec.lat),
      cat = rec.cat or '', src = rec.src or '', sev = tonumber(rec.sev or '2'),
      st = rec.st, sts = rec.sts, start = rec.rts or rec.t0, due = due_of(rec),
      title = rec.title or '', dept = rec.dept or '', nre = rec.nre or 0,
      nrep = rec.rl and #rec.rl or 1})
    closed_rem[#closed_rem + 1] = iid
  else
    open_gone[#open_gone + 1] = iid
    closed_add[#closed_add + 1] = NOW
    closed_add[#closed_add + 1] = iid
  end
  if rec.case == iid and rec.rl then  -- a merged case's reports are forgotten with it
    for _, r in ipairs(rec.rl) do
      if r.i ~= iid and rec.st == 'closed' then
        closed_add[#closed_add + 1] = NOW
        closed_add[#closed_add + 1] = r.i
      elseif r.i ~= iid then
        closed_rem[#closed_rem + 1] = r.i
      end
    end
  end
end
hset_all(P .. 'inc', inc_out)
hset_all(P .. 'open', open_out)
for iid, _ in pairs(open_out) do open_changed[#open_changed + 1] = iid end
for _, iid in ipairs(open_gone) do open_changed[#open_changed + 1] = iid end
local reg_out = {}
for hk, v in pairs(reg_new) do
  local sep = string.find(hk, '\0', 1, true)
  local h = string.sub(hk, 1, sep - 1)
  local out = reg_out[h]
  if not out then out = {}; reg_out[h] = out end
  out[string.sub(hk, sep + 1)] = v
end
for h, map in pairs(reg_out) do hset_all(P .. h, map) end
hset_all(P .. 'riskord', order_dirty)
local notes_out = {}
for iid, list in pairs(notes_new) do notes_out[iid] = cjson.encode(list) end
hset_all(P .. 'notes', notes_out)
if #open_gone > 0 then redis.call('HDEL', P .. 'open', unpack(open_gone)) end
if #closed_add > 0 then redis.call('ZADD', P .. 'closed', unpack(closed_add)) end
if #closed_rem > 0 then redis.call('ZREM', P .. 'closed', unpack(closed_rem)) end

-- (read and written once per hash: cheaper than an HINCRBY per field, and as atomic here)
local days = {}
for k, v in pairs(counters) do
  if v ~= 0 then
    local sep = string.find(k, '\0', 1, true)
    local hash = string.sub(k, 1, sep - 1)
    local moved = days[hash]
    if not moved then moved = {fields = {}, by = {}}; days[hash] = moved end
    moved.fields[#moved.fields + 1] = string.sub(k, sep + 1)
    moved.by[#moved.by + 1] = v
  end
end
for hash, moved in pairs(days) do
  local values = redis.call('HMGET', P .. hash, unpack(moved.fields))
  local flat = {}
  for j, f in ipairs(moved.fields) do
    flat[#flat + 1] = f
    flat[#flat + 1] = string.format('%d', (tonumber(values[j]) or 0) + moved.by[j])
  end
  redis.call('HSET', P .. hash, unpack(flat))
end
for hash, _ in pairs(days) do
  local ttl = batch.dayttl
  if string.sub(hash, 1, 3) == 'rk:' then ttl = batch.rkttl end
  redis.call('EXPIRE', P .. hash, ttl)
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
end
-- The change log (stream `chg`, the last CHANGES_KEPT versions): each version with the
-- open incidents it set or removed (`o`) and the register fields it wrote (`r:<hash>`),
-- so that a reader holding the version before reads those
-- (dashboard/state/read_changes.lua), not the whole hashes.
if applied > 0 or #open_changed > 0 or next(reg_out) then
  local version = redis.call('INCR', P .. 'version')
  local entry = {'v', version, 'o', table.concat(open_changed, '\n')}
  for h, map in pairs(reg_out) do
    local names = {}
    for f, _ in pairs(map) do names[#names + 1] = f end
    entry[#entry + 1] = 'r:' .. h
    entry[#entry + 1] = table.concat(names, '\n')
  end
  redis.call('XADD', P .. 'chg', 'MAXLEN', '~', CHANGES_KEPT, '*', unpack(entry))
end
if dups > 0 then redis.call('HINCRBY', P .. 'stats', 'duplicates', dups) end
-- 5. A replay's scratch namespace lists every key written, so that it is expired and
--    wiped by name, without a SCAN of the keyspace (keep this list with the writes above)
if batch.reg then
  local written = {P .. 'inc', P .. 'open', P .. 'notes', P .. 'hot:open', P .. 'hot:n',
                   P .. 'closed', P .. 'feed', P .. 'stats', P .. 'version', P .. 'riskord',
                   P .. 'chg'}
  for h, _ in pairs(reg_fields) do written[#written + 1] = P .. h end
  for hash, _ in pairs(days) do written[#written + 1] = P .. hash end
  for b, _ in pairs(new_seen) do written[#written + 1] = P .. 'seen:' .. b end
  for key, _ in pairs(geo_keys) do written[#written + 1] = key end
  redis.call('SADD', P .. batch.reg, unpack(written))
end
if #ARGV > 2 then
  redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 3))
end
return {applied, dups, dup_at}
