-- wrk script for bench/api_create.py and bench/api_batch.py: every request is the same JSON
-- text request with the bench service's key (BENCH_API_KEY), whichever path it goes to, so the
-- bare view and the create endpoint receive identical bytes. BENCH_BODY_FILE, when set, is the
-- body instead (a batch); BENCH_KEY_PREFIX, when set, gives every request its own
-- Idempotency-Key (prefix-thread-counter). At the end it prints one machine-readable line.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_API_KEY") or "")
wrk.body = '{"phone_number": "07700 900123", "content": "Your security code is 123456", '
  .. '"reference": "bench"}'

local body_file = os.getenv("BENCH_BODY_FILE")
if body_file then
  local file = assert(io.open(body_file, "rb"))
  wrk.body = file:read("*a")
  file:close()
end

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("thread_number", threads)
end

local key_prefix = os.getenv("BENCH_KEY_PREFIX")
if key_prefix then
  local sent = 0
  request = function()
    sent = sent + 1
    local headers = {}
    for name, value in pairs(wrk.headers) do headers[name] = value end
    headers["Idempotency-Key"] = key_prefix .. "-" .. (thread_number or 0) .. "-" .. sent
    return wrk.format(nil, nil, headers, nil)
  end
end

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
