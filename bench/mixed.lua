-- wrk script for bench/soak.py: a mixed load, configured through environment variables.
--
--   BENCH_READER, BENCH_READER_TOKEN, BENCH_READER_IDS   the user whose 20 tasks are read
--   BENCH_WRITER, BENCH_WRITER_TOKEN, BENCH_WRITER_IDS   the user whose tasks are written
--   BENCH_ORIGIN                                         Origin header (a browser's)
--
-- Per 100 requests: 35 list, 30 get, 10 create, 10 delete, 8 update, 7 toggle. A delete
-- removes a task this thread created (its id read from the Location header), so the
-- table stays the same size; with none in hand it creates one instead.

local reader = os.getenv("BENCH_READER")
local writer = os.getenv("BENCH_WRITER")
local reader_auth = "Bearer " .. os.getenv("BENCH_READER_TOKEN")
local writer_auth = "Bearer " .. os.getenv("BENCH_WRITER_TOKEN")
local origin = os.getenv("BENCH_ORIGIN") or ""

local function ids(name)
   local list = {}
   for id in (os.getenv(name) or ""):gmatch("%d+") do
      list[#list + 1] = id
   end
   return list
end
local reader_ids = ids("BENCH_READER_IDS")
local writer_ids = ids("BENCH_WRITER_IDS")

local created = {}  -- ids this thread created and has not deleted yet
local k = 0

local create_body = '{"title": "Made by the soak", "description": "bench"}'
local update_body = '{"title": "Renamed by the soak"}'

local function headers(auth, with_json)
   local h = { ["Authorization"] = auth }
   if origin ~= "" then
      h["Origin"] = origin
   end
   if with_json then
      h["Content-Type"] = "application/json"
   end
   return h
end

local function create()
   return wrk.format("POST", "/api/" .. writer .. "/tasks", headers(writer_auth, true), create_body)
end

function request()
   k = k + 1
   local r = math.random(100)
   if r <= 35 then
      return wrk.format("GET", "/api/" .. reader .. "/tasks?page_size=20", headers(reader_auth))
   elseif r <= 65 then
      local id = reader_ids[(k % #reader_ids) + 1]
      return wrk.format("GET", "/api/" .. reader .. "/tasks/" .. id, headers(reader_auth))
   elseif r <= 75 then
      return create()
   elseif r <= 85 then
      local id = table.remove(created)
      if not id then
         return create()
      end
      return wrk.format("DELETE", "/api/" .. writer .. "/tasks/" .. id, headers(writer_auth))
   elseif r <= 93 then
      local id = writer_ids[(k % #writer_ids) + 1]
      return wrk.format("PUT", "/api/" .. writer .. "/tasks/" .. id, headers(writer_auth, true),
                        update_body)
   else
      local id = writer_ids[(k % #writer_ids) + 1]
      return wrk.format("PATCH", "/api/" .. writer .. "/tasks/" .. id .. "/complete",
                        headers(writer_auth))
   end
end

local threads = {}
function setup(thread)
   thread:set("bench_tid", #threads)
   table.insert(threads, thread)
end

function init(args)
   math.randomseed(os.time() + (bench_tid or 0) * 7919)
end

non2xx = 0
bench_statuses = ""
local counts = {}

function response(status, headers, body)
   if status == 201 then
      local location = headers["Location"] or headers["location"] or ""
      local id = location:match("(%d+)$")
      if id then
         created[#created + 1] = id
      end
   end
   if status < 200 or status > 299 then
      non2xx = non2xx + 1
      counts[status] = (counts[status] or 0) + 1
      local parts = {}
      for code, n in pairs(counts) do
         parts[#parts + 1] = code .. ":" .. n
      end
      bench_statuses = table.concat(parts, ",")
   end
end

function done(summary, latency, requests)
   local total = 0
   local merged = {}
   for _, thread in ipairs(threads) do
      total = total + (thread:get("non2xx") or 0)
      local text = thread:get("bench_statuses") or ""
      for code, n in text:gmatch("(%d+):(%d+)") do
         merged[code] = (merged[code] or 0) + tonumber(n)
      end
   end
   local parts = {}
   for code, n in pairs(merged) do
      parts[#parts + 1] = string.format('"%s": %d', code, n)
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, '
         .. '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, '
         .. '"non2xx": %d, "statuses": {%s}, '
         .. '"errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d, "status": %d}}\n',
      summary.requests, summary.duration, summary.bytes,
      math.floor(latency:percentile(50)), math.floor(latency:percentile(90)),
      math.floor(latency:percentile(99)), math.floor(latency.max),
      total, table.concat(parts, ", "),
      e.connect, e.read, e.write, e.timeout, e.status))
end
