#!/usr/bin/env bash
# The AIMS side of the token-endpoint benchmark kit (../shared/bench, or $KIT) in one
# command: starts a release `aims serve` on a fresh temporary directory (SQLite, loopback
# issuer http://127.0.0.1:$PORT, ES256 RFC 9068 JWT access tokens, `[oauth] replay` as
# given), registers `bench-agent` with the kit's public JWKS (private_key_jwt, scopes
# api:read api:write, resource https://api.example.test/), then runs the kit's
# compare.sh (anchor oidc-provider vs AIMS, alternating), and optionally the
# introspection comparison (bench/introspect-compare.sh). Stops its server by pid.
#
# Usage: bench/oauth-compare.sh [--replay store|memory] [--port 8089] [--no-build]
#            [--introspect] [--only-introspect] [--caller pkjwt|secret]
#            [--audit] [--workers N] [-- COMPARE.SH OPTIONS...]
# --caller secret: introspection callers authenticate with client_secret_basic on both
# servers (AIMS: a legacy client `bench-rs`, `[oauth] allow_client_secrets = true`).
# --audit: AIMS writes its audit events (log filter `warn,aims::audit=info`, to a file);
# without it the log level is `warn` and audit events are filtered out.
# --workers N: `[server] worker_threads = N` (default: one per CPU).
# Defaults for compare.sh: --runs 5 --seconds 10 --conns 8 --exp-seconds 300
# (AIMS refuses client assertions living longer than 300 s; the same assertions go to
# both servers). Needs: bash $KIT/setup.sh and node $KIT/make-client-key.mjs once.
# Env: KIT (default ../shared/bench), BENCH_HOME (the kit's, default /tmp/aims-bench),
#      CARGO_TARGET_DIR (where the release `aims` is built / found).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
KIT=${KIT:-$ROOT/../shared/bench}
BENCH_HOME=${BENCH_HOME:-${TMPDIR:-/tmp}/aims-bench}
export BENCH_HOME
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}

REPLAY=store PORT=8089 BUILD=1 INTRO=0 TOKENS=1 CALLER=pkjwt LEVEL=warn WORKERS=
while [ $# -gt 0 ]; do
  case "$1" in
    --replay) REPLAY=$2; shift 2 ;;
    --port) PORT=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --introspect) INTRO=1; shift ;;
    --only-introspect) INTRO=1; TOKENS=0; shift ;;
    --caller) CALLER=$2; shift 2 ;;
    --audit) LEVEL="warn,aims::audit=info"; shift ;;
    --workers) WORKERS=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "oauth-compare: unknown option $1" >&2; exit 2 ;;
  esac
done
case "$REPLAY" in store|memory) ;; *) echo "oauth-compare: --replay store|memory" >&2; exit 2 ;; esac
[ -r "$BENCH_HOME/client.public.jwks.json" ] || {
  echo "oauth-compare: no $BENCH_HOME/client.public.jwks.json: run bash $KIT/setup.sh && node $KIT/make-client-key.mjs" >&2
  exit 2
}

if [ "$BUILD" = 1 ]; then
  CARGO_TARGET_DIR=$TARGET cargo build --release -q -p aims
fi
AIMS=$TARGET/release/aims
[ -x "$AIMS" ] || { echo "oauth-compare: no $AIMS (build it or drop --no-build)" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/aims-oauth-bench.XXXXXX")
PID=
cleanup() {
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
    kill "$PID"
    for _ in $(seq 1 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cat >"$WORK/aims.toml" <<EOF
version = 1

[server]
trust_domain = "bench.example"
data_dir = "$WORK/data"
${WORKERS:+worker_threads = $WORKERS}

[admin]
socket_path = "$WORK/admin.sock"

[workload_api]
socket_path = "$WORK/workload.sock"

[http]
listen = "127.0.0.1:$PORT"

[log]
level = "$LEVEL"

[oauth]
issuer = "http://127.0.0.1:$PORT"
scopes = ["api:read", "api:write"]
replay = "$REPLAY"
allow_client_secrets = $([ "$CALLER" = secret ] && echo true || echo false)
EOF

"$AIMS" serve --config "$WORK/aims.toml" >"$WORK/aims.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$PORT/.well-known/oauth-authorization-server" >/dev/null 2>&1 && break
  kill -0 "$PID" 2>/dev/null || { cat "$WORK/aims.log" >&2; echo "oauth-compare: aims exited" >&2; exit 1; }
  sleep 0.1
done
"$AIMS" client create --admin-socket "$WORK/admin.sock" --client-id bench-agent \
  --jwks-file "$BENCH_HOME/client.public.jwks.json" --auth-method private_key_jwt \
  --scope "api:read api:write" --resource https://api.example.test/ --token-format jwt >&2
SECRET=
if [ "$CALLER" = secret ]; then
  SECRET=$("$AIMS" client create --admin-socket "$WORK/admin.sock" --client-id bench-rs \
    --auth-method client_secret_basic --introspect-resource https://api.example.test/ |
    awk '$1 == "client" && $2 == "secret" { print $3 }')
  [ -n "$SECRET" ] || { echo "oauth-compare: no secret for bench-rs" >&2; exit 1; }
fi
echo "oauth-compare: aims pid=$PID issuer=http://127.0.0.1:$PORT replay=$REPLAY" >&2

RC=0
if [ "$TOKENS" = 1 ]; then
  "$KIT/compare.sh" "http://127.0.0.1:$PORT/oauth/token" --aud "http://127.0.0.1:$PORT" \
    --server-pid "$PID" --runs 5 --seconds 10 --conns 8 --exp-seconds 300 "$@" || RC=$?
fi
if [ "$INTRO" = 1 ]; then
  if [ "$CALLER" = secret ]; then
    KIT=$KIT bash "$ROOT/bench/introspect-compare.sh" --aims-port "$PORT" --aims-pid "$PID" \
      --caller secret --aims-secret "$SECRET" || RC=$?
  else
    KIT=$KIT bash "$ROOT/bench/introspect-compare.sh" --aims-port "$PORT" --aims-pid "$PID" || RC=$?
  fi
fi
exit $RC
