-- wrk script: one POST whose body and headers come from the environment, and a result line
-- with the figures the benchmark needs.
--   BENCH_BODY     the request body
--   BENCH_HEADERS  headers as "Name: value" separated by "|"
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY") or ""
local headers = os.getenv("BENCH_HEADERS") or ""
for pair in string.gmatch(headers, "[^|]+") do
  local name, value = string.match(pair, "^%s*([^:]+):%s*(.*)$")
  if name then
    wrk.headers[name] = value
  end
end

done = function(summary, latency, requests)
  local seconds = summary.duration / 1e6
  io.write(string.format(
    "RESULT requests=%d seconds=%.3f rps=%.1f p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f non2xx=%d errors=%d\n",
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency:percentile(99.9) / 1000,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
