-- bench.lua N: a Lua 5.4 workload for the paging comparison, run by /bench/run.sh lua N.
-- Allocation-heavy on purpose (tables, strings, closures, coroutines), so that the garbage
-- collector and the C heap grow, shrink and touch fresh pages. Prints one result line whose
-- checksum depends only on N; every checksum avoids hash-table iteration order (Lua seeds
-- its string hashes randomly).
local n = math.tointeger(tonumber(arg[1] or ""))
if n == nil or n < 1 then
  io.stderr:write("lua: usage: bench.lua N (N >= 1)\n")
  os.exit(2)
end

local function mix(h, v)
  h = h ~ (v + 0x9e3779b97f4a7c15 + (h << 6) + (h >> 2))
  h = h ~ (h >> 31)
  h = h * 0xbf58476d1ce4e5b9
  h = h ~ (h >> 29)
  return h
end

local seed = 12345
local function rand()
  seed = (seed * 6364136223846793005 + 1442695040888963407)
  return (seed >> 33)
end

local h = 0

-- 1. Table churn: short-lived tables of records.
for i = 1, n do
  local t = {}
  for j = 1, 64 do t[j] = { id = j, w = (i * j) % 97, name = "r" .. j } end
  local s = 0
  for j = 1, #t do s = s + t[j].w * #t[j].name end
  h = mix(h, s)
end

-- 2. Strings: build, format, search and rewrite.
local parts = {}
for i = 1, n * 4 do parts[i] = string.format("%d:%x", i, rand() % 65536) end
local text = table.concat(parts, ",")
local swapped = text:gsub("(%d+):(%x+)", "%2=%1")
h = mix(h, #text)
h = mix(h, #swapped)
local count = 0
for _ in swapped:gmatch("=1%d*,") do count = count + 1 end
h = mix(h, count)
for i = 1, #swapped, 97 do h = mix(h, swapped:byte(i)) end

-- 3. Sorting a large array (grows the heap).
local arr = {}
for i = 1, n * 10 do arr[i] = rand() % 1000003 end
table.sort(arr)
for i = 1, #arr, math.max(1, #arr // 64) do h = mix(h, arr[i]) end
h = mix(h, arr[#arr])

-- 4. Word counting with a string-keyed map, read back in sorted key order.
local counts = {}
for i = 1, n * 8 do
  local w = "w" .. (rand() % 509)
  counts[w] = (counts[w] or 0) + 1
end
local keys = {}
for k in pairs(counts) do keys[#keys + 1] = k end
table.sort(keys)
for _, k in ipairs(keys) do h = mix(mix(h, #k), counts[k]) end

-- 5. Closures and coroutines.
local function counter(step)
  local c = 0
  return function() c = c + step; return c end
end
local gen = coroutine.wrap(function()
  for i = 1, n * 4 do coroutine.yield(counter(i % 7 + 1)) end
end)
for _ = 1, n * 4 do
  local f = gen()
  h = mix(h, f() + f())
end

collectgarbage("collect")
print(string.format("result: lua n=%d checksum=%016x", n, h))
