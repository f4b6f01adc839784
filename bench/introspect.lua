-- wrk script: RFC 7662 introspection requests for one access token, each authenticated by
-- private_key_jwt with its own pre-generated client assertion (an AS refuses a replayed jti).
--
-- Environment (bench/introspect-compare.sh sets these):
--   INTRO_ASSERTIONS  file with one compact JWT per line
--   INTRO_TOKEN       the access token to introspect
--   INTRO_CLIENT_ID   (default bench-agent)
-- One wrk thread (-t1). At the end prints:
--   introspections_per_sec=... total=... bad=... p50_ms=... p99_ms=... exhausted=0|1
-- `bad` counts answers that are not 200 with "active":true.

local function urlencode(s)
  return (string.gsub(s, "[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

local file = os.getenv("INTRO_ASSERTIONS")
local token = os.getenv("INTRO_TOKEN") or ""
local client_id = os.getenv("INTRO_CLIENT_ID") or "bench-agent"
local prefix = "token=" .. urlencode(token) .. "&token_type_hint=access_token&client_id=" .. urlencode(client_id)
  .. "&client_assertion_type=" .. urlencode("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
  .. "&client_assertion="

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Accept"] = "application/json"

local threads = {}
function setup(thread) table.insert(threads, thread) end

bad = 0
late = 0
exhausted = false
first_error = nil
local lines, n, idx, last = {}, 0, 1, ""

function init(args)
  local f = io.open(file, "rb")
  if f == nil then io.stderr:write("introspect.lua: cannot open " .. tostring(file) .. "\n"); os.exit(2) end
  for line in f:lines() do
    if line ~= "" then n = n + 1; lines[n] = line end
  end
  f:close()
end

function request()
  if idx > n then
    if not exhausted then exhausted = true; wrk.thread:stop() end
    return wrk.format(nil, nil, nil, prefix .. last)
  end
  last = lines[idx]; lines[idx] = nil; idx = idx + 1
  return wrk.format(nil, nil, nil, prefix .. last)
end

function response(status, headers, body)
  if exhausted then late = late + 1; return end
  if status ~= 200 or not string.find(body or "", '"active":%s*true') then
    bad = bad + 1
    if first_error == nil then first_error = string.format("status=%d body=%s", status, string.sub(body or "", 1, 300)) end
  end
end

function done(summary, latency, requests)
  local b, lost, ex, first = 0, 0, 0, nil
  for _, t in ipairs(threads) do
    b = b + (t:get("bad") or 0); lost = lost + (t:get("late") or 0)
    if t:get("exhausted") then ex = 1 end
    if first == nil then first = t:get("first_error") end
  end
  local secs = summary.duration / 1e6
  local total = summary.requests - lost
  io.write(string.format("introspections_per_sec=%.1f total=%d bad=%d p50_ms=%.3f p99_ms=%.3f exhausted=%d duration_s=%.3f\n",
    (total - b) / secs, total, b, latency:percentile(50) / 1000, latency:percentile(99) / 1000, ex, secs))
  if first ~= nil then io.write("introspect_first_error " .. (string.gsub(first, "[\r\n]", " ")) .. "\n") end
end
