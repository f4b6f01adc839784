-- wrk script: RFC 7662 introspection requests for one access token, the caller (a
-- resource server) authenticated with HTTP Basic (client_secret_basic, RFC 6749 §2.3.1).
--
-- Environment (bench/introspect-compare.sh --caller secret sets these):
--   INTRO_TOKEN  the access token to introspect
--   INTRO_BASIC  base64 of "client_id:secret" (form-urlencoded parts)
-- At the end prints:
--   introspections_per_sec=... total=... bad=... p50_ms=... p99_ms=... exhausted=0
-- `bad` counts answers that are not 200 with "active":true.

local token = os.getenv("INTRO_TOKEN") or ""
local basic = os.getenv("INTRO_BASIC") or ""

local function urlencode(s)
  return (string.gsub(s, "[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Accept"] = "application/json"
wrk.headers["Authorization"] = "Basic " .. basic
wrk.body = "token=" .. urlencode(token) .. "&token_type_hint=access_token"

local threads = {}
function setup(thread) table.insert(threads, thread) end

bad = 0
first_error = nil

function response(status, headers, body)
  if status ~= 200 or not string.find(body or "", '"active":%s*true') then
    bad = bad + 1
    if first_error == nil then first_error = string.format("status=%d body=%s", status, string.sub(body or "", 1, 300)) end
  end
end

function done(summary, latency, requests)
  local b, first = 0, nil
  for _, t in ipairs(threads) do
    b = b + (t:get("bad") or 0)
    if first == nil then first = t:get("first_error") end
  end
  local secs = summary.duration / 1e6
  io.write(string.format("introspections_per_sec=%.1f total=%d bad=%d p50_ms=%.3f p99_ms=%.3f exhausted=0 duration_s=%.3f\n",
    (summary.requests - b) / secs, summary.requests, b, latency:percentile(50) / 1000, latency:percentile(99) / 1000, secs))
  if first ~= nil then io.write("introspect_first_error " .. (string.gsub(first, "[\r\n]", " ")) .. "\n") end
end
