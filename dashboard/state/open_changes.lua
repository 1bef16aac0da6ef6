-- Read the open incidents (`open`) as they are at the current version, given what a
-- reader holds: only the changes since its version when the change log (`chg`, written
-- by apply.lua: per version its `v` and the incident ids it set or removed, `o`) still
-- has every one of them, else the whole hash. Read-only and atomic, so the version and
-- what is returned belong together. The reader's version is checked by its log entry's
-- id too: a state wiped and rebuilt past that version has other entry ids.
--
-- KEYS[1]  the change log stream (`<prefix>chg`)
-- ARGV[1]  key prefix; ARGV[2] the version the reader holds (0: none) and ARGV[3] the id
--          of its log entry; ARGV[4] the most changes to read one by one
-- Returns {version, entry id ('' when the log does not have it), 0} (nothing changed),
-- {version, entry id, 1, ids, values} (the incidents set or removed since the reader's
-- version: a value is false when removed), or {version, entry id, 2, HGETALL of open}.
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

local behind = version - held
if held > 0 and behind >= 0 and behind <= most and held_id ~= '' then
  -- the entries of the versions since, and the reader's own (newest first)
  local entries = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', behind + 1)
  local ids, seen, whole = {}, {}, #entries == behind + 1
  for k, entry in ipairs(entries) do
    if not whole then break end
    local v, fields = version_of(entry)
    if v ~= version - k + 1 then
      whole = false
    elseif k == #entries then
      whole = entry[1] == held_id  -- the version the reader holds, from this same log
    else
      for j = 1, #fields, 2 do
        if fields[j] == 'o' then
          for iid in string.gmatch(fields[j + 1], '[^\n]+') do
            if not seen[iid] then seen[iid] = true; ids[#ids + 1] = iid end
          end
        end
      end
      if #ids > most then whole = false end
    end
  end
  if whole then
    local newest = entries[1][1]
    if behind == 0 then return {version, newest, 0} end
    if #ids == 0 then return {version, newest, 1, {}, {}} end
    return {version, newest, 1, ids, redis.call('HMGET', P .. 'open', unpack(ids))}
  end
end
local newest = ''
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
if last and version_of(last) == version then newest = last[1] end
return {version, newest, 2, redis.call('HGETALL', P .. 'open')}
