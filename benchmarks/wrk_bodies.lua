-- wrk script for serving.py: POST a rotating set of request bodies, report as one JSON line.
--
-- Usage: wrk -s wrk_bodies.lua URL -- BODIES_FILE PATH [AUTHORIZATION]
--   BODIES_FILE    one JSON request body per line
--   PATH           the request path, e.g. /v1/deployments/credit/decide
--   AUTHORIZATION  optional Authorization header value, e.g. "Bearer <token>"
--
-- done() prints a line starting with BENCH_RESULT followed by a JSON object: completed
-- requests, duration, socket errors, non-2xx/3xx responses and latency percentiles (µs).

local threads = {}
local requests = {}
local index = 0

function setup(thread)
   thread:set("offset", #threads * 97)
   table.insert(threads, thread)
end

function init(args)
   local path = args[1]
   local url_path = args[2]
   local authorization = args[3]
   if path == nil or url_path == nil then
      error("usage: wrk -s wrk_bodies.lua URL -- BODIES_FILE PATH")
   end
   for line in io.lines(path) do
      if #line > 0 then
         local headers = { ["Content-Type"] = "application/json" }
         if authorization ~= nil and #authorization > 0 then
            headers["Authorization"] = authorization
         end
         requests[#requests + 1] = wrk.format("POST", url_path, headers, line)
      end
   end
   if #requests == 0 then
      error("no request bodies in " .. path)
   end
   index = (offset or 0) % #requests
end

function request()
   index = index % #requests + 1
   return requests[index]
end

function done(summary, latency, _)
   local e = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, '
         .. '"connect_errors": %d, "read_errors": %d, "write_errors": %d, '
         .. '"timeouts": %d, "non_2xx": %d, '
         .. '"mean_us": %.1f, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.timeout, e.status,
      latency.mean, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max
   ))
end
