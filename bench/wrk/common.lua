-- Shared by the workload scripts of bench/run.sh (loaded with dofile from their
-- directory). Every thread counts its responses that are not 2xx and keeps a few of
-- them; done() adds them up over the threads and prints one machine-readable line
--   BENCH requests=… duration_us=… rps=… p50_us=… p99_us=… non2xx=… socket_errors=…
-- followed by up to five "NON2XX <status> <body>" samples, which run.sh shows.

bench = {}

-- Users are seeded with ids 1..BENCH_USERS (10,000 unless run.sh says otherwise).
bench.users = tonumber(os.getenv("BENCH_USERS") or "") or 10000

function bench.random_user()
   return math.random(1, bench.users)
end

local threads = {}

function setup(thread)
   thread:set("thread_no", #threads + 1)
   table.insert(threads, thread)
end

function init(args)
   non2xx = 0
   samples = {}
   -- Each thread has its own Lua state; seed each one differently.
   math.randomseed(os.time() * 100 + (thread_no or 0))
end

function response(status, headers, body)
   if status < 200 or status > 299 then
      non2xx = non2xx + 1
      if #samples < 5 then
         table.insert(samples, status .. " " .. string.sub(body or "", 1, 300))
      end
   end
end

function done(summary, latency, requests)
   local total, shown = 0, {}
   for _, thread in ipairs(threads) do
      total = total + (thread:get("non2xx") or 0)
      local thread_samples = thread:get("samples") or {}
      for _, sample in ipairs(thread_samples) do
         if #shown < 5 then table.insert(shown, sample) end
      end
   end
   local e = summary.errors
   local seconds = summary.duration / 1e6
   io.write(string.format(
      "BENCH requests=%d duration_us=%d rps=%.1f p50_us=%d p99_us=%d non2xx=%d socket_errors=%d/%d/%d/%d\n",
      summary.requests, summary.duration, summary.requests / seconds,
      latency:percentile(50), latency:percentile(99), total,
      e.connect, e.read, e.write, e.timeout))
   for _, sample in ipairs(shown) do
      io.write("NON2XX " .. string.gsub(sample, "\n", " ") .. "\n")
   end
end
