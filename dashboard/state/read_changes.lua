-- Read the open incidents (`open`) and the registers as they are at the current version,
-- given what a reader holds: only what changed since its version when the change log
-- (`chg`, written by apply.lua: per version its `v`, the incident ids it set or removed,
-- `o`, and the fields it wrote in each register, `r:<hash>`) still has every version
-- since, else the whole hashes. Read-only and atomic, so the version and what is
-- returned belong together. The reader's version is checked by its log entry's id too:
-- a state wiped and rebuilt past that version has other entry ids.
--
-- KEYS[1]  the change log stream (`<prefix>chg`)
-- ARGV[1]  key prefix; ARGV[2] the version the reader holds (0: none) and ARGV[3] the id
--          of its log entry; ARGV[4] the most changes to read one by one; ARGV[5..] the
--          register hashes (names after the prefix)
-- Returns {version, entry id ('' when the log does not have it), mode, ...}:
--   mode 0: nothing changed;
--   mode 1: ids, values (the incidents set or removed since: false when removed), then
--           {hash, fields, values, ...} for each register with fields written since;
--   mode 2: HGETALL of open, then {hash, HGETALL of it, ...} for every register.
local P, held, held_id = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local most = tonumber(ARGV[4])
local version = tonumber(redis.call('GET', P .. 'version') or '0')

local function version_of(entry)
  local fields = entry[2]
  for j = 1, #fields, 2 do
    if fields[j] == 'v' then return tonumber(fields[j + 1]), fields end
  end
  return nil, fields
end

local function add_all(list, seen, joined)  -- the ids of one log field, each once
  local n = 0
  for id in string.gmatch(joined, '[^\n]+') do
    if not seen[id] then seen[id] = true; list[#list + 1] = id; n = n + 1 end
  end
  return n
end

local behind = version - held
if held > 0 and behind >= 0 and behind <= most and held_id ~= '' then
  -- the entries of the versions since, and the reader's own (newest first)
  local entries = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', behind + 1)
  local ids, seen, regs, total = {}, {}, {}, 0
  local whole = #entries == behind + 1
  for k, entry in ipairs(entries) do
    if not whole then break end
    local v, fields = version_of(entry)
    if v ~= version - k + 1 then
      whole = false
    elseif k == #entries then
      whole = entry[1] == held_id  -- the version the reader holds, from this same log
    else
      for j = 1, #fields, 2 do
        local name = fields[j]
        if name == 'o' then
          total = total + add_all(ids, seen, fields[j + 1])
        elseif string.sub(name, 1, 2) == 'r:' then
          local h = string.sub(name, 3)
          local reg = regs[h]
          if not reg then reg = {fields = {}, seen = {}}; regs[h] = reg end
          total = total + add_all(reg.fields, reg.seen, fields[j + 1])
        end
      end
      if total > most then whole = false end
    end
  end
  if whole then
    local newest = entries[1][1]
    if behind == 0 then return {version, newest, 0} end
    local values = #ids > 0 and redis.call('HMGET', P .. 'open', unpack(ids)) or {}
    local out_regs = {}
    for h, reg in pairs(regs) do
      if #reg.fields > 0 then
        out_regs[#out_regs + 1] = h
        out_regs[#out_regs + 1] = reg.fields
        out_regs[#out_regs + 1] = redis.call('HMGET', P .. h, unpack(reg.fields))
      end
    end
    return {version, newest, 1, ids, values, out_regs}
  end
end
local newest = ''
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
if last and version_of(last) == version then newest = last[1] end
local out_regs = {}
for i = 5, #ARGV do
  out_regs[#out_regs + 1] = ARGV[i]
  out_regs[#out_regs + 1] = redis.call('HGETALL', P .. ARGV[i])
end
return {version, newest, 2, redis.call('HGETALL', P .. 'open'), out_regs}
