#!/usr/bin/env bash
# Introspection throughput (RFC 7662), AIMS against the reference oidc-provider, alternating
# in one session, with the token-endpoint kit's tools (KIT, default ../shared/bench).
#
# Every request introspects one valid access token of `bench-agent` and authenticates the
# caller with private_key_jwt (a fresh ES256 assertion per request, aud = the issuer), as
# both servers require client authentication at the introspection endpoint.
# - AIMS: its RFC 9068 JWT access token (introspection verifies the signature and claims
#   and looks the jti up in the revocation records).
# - anchor: oidc-provider refuses to introspect JWT access tokens ("Structured JWT Tokens
#   cannot be introspected"), so it runs here as a copy of the kit's anchor-server.mjs with
#   `accessTokenFormat: 'opaque'` (written to $BENCH_HOME/anchor-opaque.mjs): it looks
#   the token up in its in-memory adapter.
#
# The caller (the resource server asking) authenticates one of two ways, the same on both
# servers (`--caller`):
# - `pkjwt` (default): as `bench-agent`, private_key_jwt with a fresh ES256 assertion per
#   request (bench/introspect.lua);
# - `secret`: as `bench-rs`, client_secret_basic with a server-generated secret (HTTP
#   Basic, bench/introspect-basic.lua). On AIMS this is a legacy client
#   (`[oauth] allow_client_secrets = true`), registered by bench/oauth-compare.sh, which
#   passes its secret as --aims-secret; the anchor gets the same client with its own
#   random secret.
#
# Usage: bench/introspect-compare.sh --aims-port PORT --aims-pid PID
#            [--caller pkjwt|secret --aims-secret SECRET]
#            [--anchor-port 3000] [--runs 5] [--seconds 10] [--conns 8]
# AIMS must run already with `bench-agent` (and for --caller secret `bench-rs`) registered
# (bench/oauth-compare.sh does both).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
KIT=${KIT:-$HERE/../../shared/bench}
BENCH_HOME=${BENCH_HOME:-${TMPDIR:-/tmp}/aims-bench}
export BENCH_HOME
APORT=3000 RUNS=5 SECS=10 CONNS=8 BPORT= BPID= CALLER=pkjwt BSECRET=
while [ $# -gt 0 ]; do
  case "$1" in
    --aims-port) BPORT=$2; shift 2 ;;
    --aims-pid) BPID=$2; shift 2 ;;
    --anchor-port) APORT=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --seconds) SECS=$2; shift 2 ;;
    --conns) CONNS=$2; shift 2 ;;
    --caller) CALLER=$2; shift 2 ;;
    --aims-secret) BSECRET=$2; shift 2 ;;
    *) echo "introspect-compare: unknown option $1" >&2; exit 2 ;;
  esac
done
[ -n "$BPORT" ] && [ -n "$BPID" ] || { sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
case "$CALLER" in
  pkjwt) ;;
  secret) [ -n "$BSECRET" ] || { echo "introspect-compare: --caller secret needs --aims-secret" >&2; exit 2; } ;;
  *) echo "introspect-compare: --caller pkjwt|secret" >&2; exit 2 ;;
esac
KEY=$BENCH_HOME/client.private.jwk.json
JWKS=$BENCH_HOME/client.public.jwks.json
log() { echo "introspect-compare: $*" >&2; }

# --- the anchor, opaque access tokens --------------------------------------------------------
ANCHOR=$BENCH_HOME/anchor-opaque.mjs
sed "s/accessTokenFormat: 'jwt'/accessTokenFormat: 'opaque'/" "$KIT/anchor-server.mjs" >"$ANCHOR"
grep -q "accessTokenFormat: 'opaque'" "$ANCHOR" || { log "cannot make the opaque-token anchor"; exit 2; }
# --caller secret: a second client, `bench-rs`, with client_secret_basic (oidc-provider
# compares the secret as given; the resource server's random secret is in RS_SECRET).
RS_SECRET=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
export RS_SECRET
if [ "$CALLER" = secret ]; then
  sed -i "s|^  clients: \[{\$|  clients: [{ client_id: 'bench-rs', client_secret: process.env.RS_SECRET, token_endpoint_auth_method: 'client_secret_basic', grant_types: [], response_types: [], redirect_uris: [] }, {|" "$ANCHOR"
  grep -q "client_id: 'bench-rs'" "$ANCHOR" || { log "cannot add bench-rs to the anchor"; exit 2; }
fi
ALOG=$(mktemp "$BENCH_HOME/anchor-opaque.XXXXXX.log")
CLIENT_JWKS=$JWKS PORT=$APORT RESOURCE_PREFIX=https://api.example.test/ SCOPES="api:read api:write" \
  node "$ANCHOR" >"$ALOG" 2>&1 &
APID=$!
WORK=$(mktemp -d "$BENCH_HOME/intro.XXXXXX")
cleanup() {
  kill "$APID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
for _ in $(seq 1 150); do
  ss -ltnpH "sport = :$APORT" 2>/dev/null | grep -q "pid=$APID," && break
  sleep 0.1
done
ss -ltnpH "sport = :$APORT" 2>/dev/null | grep -q "pid=$APID," || { cat "$ALOG" >&2; log "anchor did not start"; exit 2; }

gen() { # AUD COUNT FILE
  node "$KIT/make-assertions.mjs" --client-id bench-agent --aud "$1" --key "$KEY" --count "$2" \
    --out "$3" --exp-seconds 300 >/dev/null 2>&1
}
token() { # TOKEN_URL AUD -> access token on stdout
  gen "$2" 1 "$WORK/t.jwt"
  curl -fsS "$1" -d grant_type=client_credentials -d scope=api:read \
    --data-urlencode resource=https://api.example.test/ -d client_id=bench-agent \
    -d client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer \
    -d "client_assertion=$(cat "$WORK/t.jwt")" |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).access_token))'
}
ticks() { sed -E 's/^.*\) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
kv() { awk -v k="$1" '{ for (i = 1; i <= NF; i++) { p = index($i, "="); if (substr($i, 1, p - 1) == k) { print substr($i, p + 1); exit } } }'; }
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
TCK=$(getconf CLK_TCK)

one() { # LABEL ORIGIN TOKEN_PATH INTRO_PATH PID COUNT SECRET
  local label=$1 origin=$2 at out line ips cpu
  at=$(token "$origin$3" "$origin") || { log "no token from $label"; exit 1; }
  local load c0 c1
  if [ "$CALLER" = secret ]; then
    local basic; basic=$(printf 'bench-rs:%s' "$7" | base64 -w0)
    load=$(cut -d' ' -f1 /proc/loadavg)
    c0=$(ticks "$5")
    out=$(INTRO_BASIC=$basic INTRO_TOKEN=$at timeout $((SECS + 60)) \
      wrk -t1 -c"$CONNS" -d"${SECS}s" --timeout 5s -s "$HERE/introspect-basic.lua" "$origin$4" 2>&1)
    c1=$(ticks "$5")
  else
    gen "$origin" "$6" "$WORK/a.jwt"
    load=$(cut -d' ' -f1 /proc/loadavg)
    c0=$(ticks "$5")
    out=$(INTRO_ASSERTIONS=$WORK/a.jwt INTRO_TOKEN=$at timeout $((SECS + 60)) \
      wrk -t1 -c"$CONNS" -d"${SECS}s" --timeout 5s -s "$HERE/introspect.lua" "$origin$4" 2>&1)
    c1=$(ticks "$5")
  fi
  line=$(echo "$out" | grep '^introspections_per_sec=')
  [ -n "$line" ] || { echo "$out" >&2; exit 1; }
  echo "$out" | grep '^introspect_first_error' >&2
  ips=$(echo "$line" | kv introspections_per_sec)
  cpu=$(awk -v c=$((c1 - c0)) -v k="$TCK" 'BEGIN { printf "%.2f", c / k }')
  local total bad percpu
  total=$(echo "$line" | kv total); bad=$(echo "$line" | kv bad)
  percpu=$(awk -v t="$total" -v b="$bad" -v s="$cpu" 'BEGIN { if (s > 0) printf "%.0f", (t - b) / s; else print "n/a" }')
  echo "introspect label=$label caller=$CALLER $line server_cpu_s=$cpu per_server_cpu_s=$percpu loadavg_before=$load"
  R_IPS=$ips R_PC=$percpu
}

A_IPS= A_PC= B_IPS= B_PC= RT= RC=
for r in $(seq 1 "$RUNS"); do
  one anchor "http://127.0.0.1:$APORT" /token /token/introspection "$APID" $((SECS * 10000)) "$RS_SECRET"
  a_ips=$R_IPS a_pc=$R_PC
  one aims "http://127.0.0.1:$BPORT" /oauth/token /oauth/introspect "$BPID" $((SECS * 30000)) "$BSECRET"
  RT+=$(awk -v b="$R_IPS" -v a="$a_ips" 'BEGIN { printf "%.3f", b / a }')$'\n'
  RC+=$(awk -v b="$R_PC" -v a="$a_pc" 'BEGIN { printf "%.3f", b / a }')$'\n'
  A_IPS+="$a_ips"$'\n'; A_PC+="$a_pc"$'\n'; B_IPS+="$R_IPS"$'\n'; B_PC+="$R_PC"$'\n'
done
echo "introspect summary caller=$CALLER rounds=$RUNS seconds=$SECS conns=$CONNS" \
  "anchor_median_per_sec=$(printf '%s' "$A_IPS" | median) aims_median_per_sec=$(printf '%s' "$B_IPS" | median)" \
  "anchor_median_per_cpu_s=$(printf '%s' "$A_PC" | median) aims_median_per_cpu_s=$(printf '%s' "$B_PC" | median)" \
  "median_ratio_per_sec=$(printf '%s' "$RT" | median) median_ratio_per_cpu_s=$(printf '%s' "$RC" | median)"
