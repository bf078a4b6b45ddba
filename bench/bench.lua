-- wrk script for bench/run.py: one route, configured through environment variables.
--
--   BENCH_METHOD    GET (default), POST, PUT, PATCH, DELETE
--   BENCH_PATH      the path; "{id}" in it is replaced per request (see below)
--   BENCH_TOKEN     bearer token (none for the hello app)
--   BENCH_BODY      JSON request body (sent with Content-Type: application/json)
--   BENCH_IDS       comma-separated ids, cycled through (get, update, toggle)
--   BENCH_ID_START, BENCH_ID_COUNT
--                   a block of consecutive ids, each used once (delete); ids past the
--                   block are still requested, answer 404 and so count as non-2xx
--   BENCH_ORIGIN    Origin header, as a browser frontend on another origin sends it
--   BENCH_IF_NONE_MATCH
--                   If-None-Match header (an ETag the route answers 304 to)
--   BENCH_EXPECT    a status that counts as success besides 2xx (304 for the above)
--   BENCH_THREADS   wrk's -t, so the threads take interleaved, disjoint ids
--   BENCH_STATUS_HOOK=0
--                   do not define response(): wrk then only counts statuses >= 400
--
-- done() prints one "BENCH_RESULT {json}" line with the figures bench/run.py reads.

local method = os.getenv("BENCH_METHOD") or "GET"
local template = os.getenv("BENCH_PATH") or "/"
local token = os.getenv("BENCH_TOKEN") or ""
local body = os.getenv("BENCH_BODY") or ""
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
local origin = os.getenv("BENCH_ORIGIN") or ""
local if_none_match = os.getenv("BENCH_IF_NONE_MATCH") or ""
local expect = tonumber(os.getenv("BENCH_EXPECT") or "0")

wrk.method = method
wrk.path = template
if token ~= "" then
   wrk.headers["Authorization"] = "Bearer " .. token
end
if origin ~= "" then
   wrk.headers["Origin"] = origin
end
if if_none_match ~= "" then
   wrk.headers["If-None-Match"] = if_none_match
end
if body ~= "" then
   wrk.body = body
   wrk.headers["Content-Type"] = "application/json"
end

-- setup() runs in the main Lua state once per thread, before the thread starts.
local threads = {}
function setup(thread)
   thread:set("bench_tid", #threads)
   table.insert(threads, thread)
end

-- Only a path with "{id}" needs a request() function; otherwise wrk sends one
-- pre-built request over and over, as it does for the hello app.
if template:find("{id}", 1, true) then
   local ids = nil
   local id_start = tonumber(os.getenv("BENCH_ID_START") or "")
   local list = os.getenv("BENCH_IDS") or ""
   if list ~= "" then
      ids = {}
      for id in list:gmatch("%d+") do
         ids[#ids + 1] = id
      end
   elseif not id_start then
      error("BENCH_PATH has {id} but neither BENCH_IDS nor BENCH_ID_START is set")
   end
   local k = 0
   function request()
      local tid = bench_tid or 0
      local id
      if ids then
         id = ids[((tid + k * nthreads) % #ids) + 1]
      else
         id = string.format("%d", id_start + tid + k * nthreads)
      end
      k = k + 1
      return wrk.format(nil, (template:gsub("{id}", id)))
   end
end

-- Per-thread counters, read by done() through thread:get().
non2xx = 0
bench_statuses = ""
local counts = {}

if os.getenv("BENCH_STATUS_HOOK") ~= "0" then
   function response(status, headers, body)
      if (status < 200 or status > 299) and status ~= expect then
         non2xx = non2xx + 1
         counts[status] = (counts[status] or 0) + 1
         local parts = {}
         for code, n in pairs(counts) do
            parts[#parts + 1] = code .. ":" .. n
         end
         bench_statuses = table.concat(parts, ",")
      end
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
