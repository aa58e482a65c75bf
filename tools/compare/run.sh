#!/usr/bin/env bash
# Side by side: our gateway (cmd/gateway) and oauth2-proxy, built from
# source, in front of the same upstream, signing in with the same provider.
# From anywhere:
#
#   bash tools/compare/run.sh
#   ROUNDS=5 DURATION=20s CONCURRENCY=16,32,64 bash tools/compare/run.sh
#
# It builds everything into a fresh temporary directory ($WORK, printed
# first; kept afterwards, with each process's log under $WORK/log), starts
# on 127.0.0.1:
#
#   PORT_BASE+0  the upstream: loadtest -serve-baseline, a bare net/http
#                server writing the same SIZE-byte page for every path
#   PORT_BASE+9  cmd/devidp, the provider, with one client per proxy
#   PORT_BASE+80 gateway, SESSION_STORE=memory
#   PORT_BASE+81 gateway, SESSION_STORE=redis://.../$GW_REDIS_DB
#   PORT_BASE+82 oauth2-proxy, cookie sessions
#   PORT_BASE+83 oauth2-proxy, Redis sessions in database $O2P_REDIS_DB
#
# then runs tools/compare (see its main.go) on them all, and stops
# everything it started when it exits, however it exits (trap). The
# markdown tables go to stdout and to $WORK/results.md; progress to
# stderr.
#
# Redis: the one of .ci/services, on 127.0.0.1:$REDIS_PORT (56379). If none
# answers there, it starts a throwaway redis-server of its own for the run
# (install one with `eval "$(bash .ci/services)"` from the repository
# root, which also starts it). The Redis databases GW_REDIS_DB and
# O2P_REDIS_DB (13 and 14) are emptied (FLUSHDB) before and after the run:
# they must be for this script alone.
#
# Both proxies run as shipped, but with no per-request logging: the gateway
# with LOG_LEVEL=warn and METRICS_ADDR=off, oauth2-proxy with
# --request-logging=false (its default, true, writes a line per request,
# which the gateway does not do at warn). O2P_REQUEST_LOGGING=true turns it
# back on. oauth2-proxy gets --skip-provider-button, so that a guest is
# redirected to the provider as by the gateway, instead of a page with a
# button (only sign-in sees this: the measured requests are signed in).
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
CONCURRENCY=${CONCURRENCY:-32,64}
USERS=${USERS:-16}     # users signed in per proxy and measurement
SIZE=${SIZE:-1024}     # the upstream page's size in bytes
# Below Linux's ephemeral range (32768-60999): a listener there can find its
# port taken by one of the load's own outgoing connections.
PORT_BASE=${PORT_BASE:-14100}
REDIS_PORT=${REDIS_PORT:-56379}
GW_REDIS_DB=${GW_REDIS_DB:-13}
O2P_REDIS_DB=${O2P_REDIS_DB:-14}
# Other work on the machine: before each measurement wait up to QUIET_WAIT
# for other processes to use at most MAX_OTHER cores, and measure again (up
# to RETRIES times) when they used more meanwhile (compare -max-other).
# MAX_OTHER=0 turns this off.
MAX_OTHER=${MAX_OTHER:-0.25}
QUIET_WAIT=${QUIET_WAIT:-30s}
RETRIES=${RETRIES:-2}
O2P_VERSION=${O2P_VERSION:-v7.15.6}
O2P_REQUEST_LOGGING=${O2P_REQUEST_LOGGING:-false}
O2P_MODULE=github.com/oauth2-proxy/oauth2-proxy/v7

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d /tmp/gologin-compare.XXXXXX)
BIN=$WORK/bin LOG=$WORK/log
mkdir -p "$BIN" "$LOG"
echo "compare: working in $WORK" >&2

H=127.0.0.1
UP_PORT=$PORT_BASE IDP_PORT=$((PORT_BASE + 9))
GWM_PORT=$((PORT_BASE + 80)) GWR_PORT=$((PORT_BASE + 81)) O2C_PORT=$((PORT_BASE + 82)) O2R_PORT=$((PORT_BASE + 83))
UP=http://$H:$UP_PORT IDP=http://$H:$IDP_PORT
REDIS="redis-cli -h $H -p $REDIS_PORT"

# Every process started here, killed on exit, in reverse order.
STARTED=()
cleanup() {
	local i
	for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do
		kill "${STARTED[i]}" 2>/dev/null || true
	done
	for pid in "${STARTED[@]}"; do wait "$pid" 2>/dev/null || true; done
	if [ -n "${OWN_REDIS:-}" ]; then return; fi # its data went with it
	if [ -n "${REDIS_READY:-}" ]; then
		$REDIS -n "$GW_REDIS_DB" flushdb >/dev/null 2>&1 || true
		$REDIS -n "$O2P_REDIS_DB" flushdb >/dev/null 2>&1 || true
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME CMD...: runs CMD in the background, its output in $LOG/NAME.log;
# sets PID.
start() {
	local name=$1
	shift
	"$@" >"$LOG/$name.log" 2>&1 &
	PID=$!
	STARTED+=("$PID")
}

# wait_for NAME PID CHECK...: waits up to 20 s for CHECK to succeed while
# process PID lives.
wait_for() {
	local name=$1 pid=$2
	shift 2
	for _ in $(seq 400); do
		if "$@" >/dev/null 2>&1; then return; fi
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid" 2>/dev/null || true
			echo "compare: $name exited; its log, $LOG/$name.log:" >&2
			tail -n 20 "$LOG/$name.log" >&2
			exit 1
		fi
		sleep 0.05
	done
	echo "compare: $name not ready; its log, $LOG/$name.log:" >&2
	tail -n 20 "$LOG/$name.log" >&2
	exit 1
}
http_ok() { curl -sf -o /dev/null "$1"; }
# The gateway is ready once it has discovered the provider.
gateway_ready() { curl -sf "$1/_auth/readyz" | grep -q '"provider":{[^}]*"state":"ok"'; }

# --- Build, all with the same Go toolchain, without cgo (as oauth2-proxy's
# Makefile builds its releases).
export CGO_ENABLED=0
echo "compare: building with $(go version)" >&2
go build -C "$ROOT" -o "$BIN/gateway" ./cmd/gateway
go build -C "$ROOT" -o "$BIN/devidp" ./cmd/devidp
go build -C "$ROOT/tools" -o "$BIN/loadtest" ./loadtest
go build -C "$ROOT/tools" -o "$BIN/compare" ./compare
O2P_LDFLAGS="-X $O2P_MODULE/pkg/version.VERSION=$O2P_VERSION"
echo "compare: building oauth2-proxy $O2P_VERSION from the module proxy" >&2
if ! (cd "$WORK" && GOBIN=$BIN go install -ldflags "$O2P_LDFLAGS" "$O2P_MODULE@$O2P_VERSION") 2>"$LOG/o2p-build.log"; then
	# go install refuses a module whose go.mod has replace directives:
	# build it in a copy of its source instead.
	echo "compare: go install failed ($(tail -n 1 "$LOG/o2p-build.log")); building a copy of the source" >&2
	dir=$(cd "$WORK" && go mod download -json "$O2P_MODULE@$O2P_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	cp -r "$dir" "$WORK/o2p-src"
	chmod -R u+w "$WORK/o2p-src"
	go build -C "$WORK/o2p-src" -ldflags "$O2P_LDFLAGS" -o "$BIN/oauth2-proxy" .
fi
O2P_SUM=$(go version -m "$BIN/oauth2-proxy" | awk '$1 == "mod" {print $2, $3, $4}')

# --- Redis.
if $REDIS ping 2>/dev/null | grep -q PONG; then
	echo "compare: using the Redis on $H:$REDIS_PORT" >&2
elif command -v redis-server >/dev/null; then
	echo "compare: starting a Redis of its own on $H:$REDIS_PORT" >&2
	start redis redis-server --port "$REDIS_PORT" --bind $H --save '' --appendonly no
	OWN_REDIS=1
	wait_for redis "$PID" sh -c "$REDIS ping | grep -q PONG"
else
	echo "compare: no Redis on $H:$REDIS_PORT and no redis-server: run eval \"\$(bash .ci/services)\" from $ROOT first" >&2
	exit 1
fi
REDIS_READY=1
REDIS_PID=$($REDIS info server | tr -d '\r' | awk -F: '$1 == "process_id" {print $2}')
$REDIS -n "$GW_REDIS_DB" flushdb >/dev/null
$REDIS -n "$O2P_REDIS_DB" flushdb >/dev/null

# --- The upstream and the provider.
start upstream "$BIN/loadtest" -serve-baseline -addr $H:$UP_PORT -size "$SIZE"
UP_PID=$PID
wait_for upstream "$UP_PID" http_ok "$UP/"

# One client per proxy, each with its own callback.
start devidp "$BIN/devidp" -addr $H:$IDP_PORT -issuer "$IDP" -key "$WORK/devidp-key.pem" \
	-client "gateway-memory:gateway-memory-secret:http://$H:$GWM_PORT/_auth/callback" \
	-client "gateway-redis:gateway-redis-secret:http://$H:$GWR_PORT/_auth/callback" \
	-client "o2p-cookie:o2p-cookie-secret:http://$H:$O2C_PORT/oauth2/callback" \
	-client "o2p-redis:o2p-redis-secret:http://$H:$O2R_PORT/oauth2/callback"
IDP_PID=$PID
wait_for devidp "$IDP_PID" http_ok "$IDP/.well-known/openid-configuration"

# --- The gateways. Each runs in a directory of its own.
# start_gateway NAME PORT STORE: sets PID.
start_gateway() {
	mkdir -p "$WORK/$1"
	start "$1" env -C "$WORK/$1" UPSTREAM_URL="$UP" PORT="$2" APP_BASE_URL="http://$H:$2" \
		OIDC_ISSUER="$IDP" OIDC_CLIENT_ID="$1" OIDC_CLIENT_SECRET="$1-secret" \
		SESSION_STORE="$3" METRICS_ADDR=off LOG_LEVEL=warn "$BIN/gateway"
	wait_for "$1" "$PID" gateway_ready "http://$H:$2"
}
start_gateway gateway-memory $GWM_PORT memory
GWM_PID=$PID
start_gateway gateway-redis $GWR_PORT "redis://$H:$REDIS_PORT/$GW_REDIS_DB"
GWR_PID=$PID

# --- oauth2-proxy, with a random 32-byte cookie secret (base64url, which it
# decodes). start_o2p NAME PORT CLIENT FLAGS...: sets PID.
COOKIE_SECRET=$(head -c 32 /dev/urandom | base64 -w0 | tr '+/' '-_')
start_o2p() {
	local name=$1 port=$2 client=$3
	shift 3
	start "$name" "$BIN/oauth2-proxy" --provider=oidc --oidc-issuer-url="$IDP" \
		--client-id="$client" --client-secret="$client-secret" --code-challenge-method=S256 \
		--redirect-url="http://$H:$port/oauth2/callback" --upstream="$UP/" --http-address="$H:$port" \
		--cookie-secret="$COOKIE_SECRET" --cookie-secure=false --email-domain='*' --skip-provider-button=true \
		--request-logging="$O2P_REQUEST_LOGGING" "$@"
	wait_for "$name" "$PID" http_ok "http://$H:$port/ready"
}
start_o2p oauth2-proxy-cookie $O2C_PORT o2p-cookie --session-store-type=cookie
O2C_PID=$PID
start_o2p oauth2-proxy-redis $O2R_PORT o2p-redis --session-store-type=redis \
	--redis-connection-url="redis://$H:$REDIS_PORT/$O2P_REDIS_DB"
O2R_PID=$PID

# --- Measure.
ARGS=(-rounds "$ROUNDS" -duration "$DURATION" -warmup "$WARMUP" -concurrency "$CONCURRENCY" -users "$USERS"
	-max-other "$MAX_OTHER" -quiet-wait "$QUIET_WAIT" -retries "$RETRIES"
	-target "gateway-memory=http://$H:$GWM_PORT,pid=$GWM_PID"
	-target "gateway-redis=http://$H:$GWR_PORT,pid=$GWR_PID"
	-target "oauth2-proxy-cookie=http://$H:$O2C_PORT,pid=$O2C_PID"
	-target "oauth2-proxy-redis=http://$H:$O2R_PORT,pid=$O2R_PID"
	-target "upstream-direct=$UP,pid=$UP_PID,guest"
	-extra "upstream=$UP_PID" -extra "redis=$REDIS_PID" -extra "devidp=$IDP_PID")
{
	echo "## gateway vs oauth2-proxy, $(date -u +%Y-%m-%dT%H:%MZ)"
	echo
	echo "- oauth2-proxy: $("$BIN/oauth2-proxy" --version 2>&1) ($O2P_SUM)"
	echo "- $(go version), CGO_ENABLED=0, $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'))"
	echo "- upstream: loadtest -serve-baseline, $SIZE-byte page; provider: cmd/devidp; $USERS users signed in per proxy and measurement"
	echo "- load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "- CPU µs/request: utime+stime of the proxy's process (for upstream-direct, the upstream's) per successful request;"
	echo "  the upstream, redis and devidp columns are those processes' CPU per request of the same measurement"
} | tee "$WORK/results.md"
"$BIN/compare" "${ARGS[@]}" | tee -a "$WORK/results.md"
{
	echo
	echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee -a "$WORK/results.md"
echo "compare: results in $WORK/results.md" >&2
