-- wrk script for bench/api_v2_create.py: GOV.UK Notify's POST /v2/notifications/sms
-- from the bench template, with a JWT the script signed just before this run (valid 30 s; a run
-- is shorter), so every request's token is checked in full. Its body renders to the same text
-- as post_json.lua's content. At the end it prints one machine-readable line.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_TOKEN") or "")
wrk.body = '{"phone_number": "07700 900123", "template_id": "' .. (os.getenv("BENCH_TEMPLATE_ID") or "")
  .. '", "personalisation": {"code": "123456"}, "reference": "bench"}'

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "non_2xx": %d, "connect_errors": %d, '
      .. '"read_errors": %d, "write_errors": %d, "timeouts": %d, "mean_us": %.0f, '
      .. '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max
  ))
end
