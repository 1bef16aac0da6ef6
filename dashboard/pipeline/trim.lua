-- Trim a stream by age in one atomic step, never past an entry a consumer group has not
-- read or not yet acknowledged (so no acknowledgement can race the decision).
--
-- KEYS[1]  the stream
-- ARGV[1]  the oldest id to keep ("<ms>-0"), unless a group still needs an older one
-- Returns the number of entries removed.

local function parse(id)
  local dash = string.find(id, '-', 1, true)
  if not dash then return {tonumber(id), 0} end
  return {tonumber(string.sub(id, 1, dash - 1)), tonumber(string.sub(id, dash + 1))}
end

local function older(a, b)
  return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2])
end

if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local bound = parse(ARGV[1])
for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local info = {}
  for i = 1, #group, 2 do info[group[i]] = group[i + 1] end
  -- Entries after the last delivered one are unread: keep them (the id itself was read).
  local last = parse(info['last-delivered-id'])
  last[2] = last[2] + 1
  if older(last, bound) then bound = last end
  local summary = redis.call('XPENDING', KEYS[1], info['name'])
  if summary[2] then  -- the oldest entry not yet acknowledged, if any
    local first = parse(summary[2])
    if older(first, bound) then bound = first end
  end
end
return redis.call('XTRIM', KEYS[1], 'MINID', bound[1] .. '-' .. bound[2])
