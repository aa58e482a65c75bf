#!/usr/bin/env bash
# The measurements of BENCHMARKS.md. From the repository root:
#
#   eval "$(.ci/services)"     # optional: Redis and PostgreSQL for those stores
#   REDIS_URL=redis://127.0.0.1:56379/1 \
#   POSTGRES_URL='postgres://postgres@127.0.0.1:55432/postgres?sslmode=disable' \
#   bash tools/loadtest/measure.sh
#
# (It works from any directory: it builds the app from the repository that
# holds it, and loadtest from that repository's tools module.)
#
# It takes about 20 minutes, uses ports 3001, 3002 (the app's metrics), 3100,
# 3101 and 9000 on 127.0.0.1, and cleans up the Redis keys (prefix gologin:)
# and PostgreSQL schemas (gologin_bench_N) it creates; on Redis, use a
# database of its own.
#
# Results go to $OUT/results (default /tmp/gologin-bench). Needs curl and jq
# (psql and redis-cli for those stores). PARTS selects parts; ROUNDS, C and
# D set the page-view rounds, concurrency and duration.
#
# The machine is shared with whatever else runs: before each measurement
# the script waits until no Go build or test process (go, compile, link,
# vet, *.test) is running, and a measurement during which one appeared is
# repeated (up to three times; $RES/foreign.log lists what was seen).
set -euo pipefail
OUT=${OUT:-/tmp/gologin-bench}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd) # absolute: the script changes directory
cd "$(dirname "$0")/../.."
BIN=$OUT/bin RES=$OUT/results
ROUNDS=${ROUNDS:-3} C=${C:-32} D=${D:-10s}
PARTS=${PARTS:-pages cpu burst memory startup gobench}
APP=http://127.0.0.1:3001 METRICS=127.0.0.1:3002 IDP=http://127.0.0.1:9000 BASE=http://127.0.0.1:3100 BASELOGIN=http://127.0.0.1:3101
mkdir -p "$BIN" "$RES"
go build -o "$BIN/webapp" ./cmd/webapp
go build -o "$BIN/devidp" ./cmd/devidp
go build -C tools -o "$BIN/loadtest" ./loadtest # a module of its own
go test -c -o "$BIN/appbench" ./internal/app
LT=$BIN/loadtest

part() { [[ " $PARTS " == *" $1 "* ]]; }
log() { echo "== $(date +%T) $* (load average: $(cut -d' ' -f1-3 /proc/loadavg))" >&2; }
wait_ok() { for _ in $(seq 2000); do curl -sf -o /dev/null "$1" && return; sleep 0.005; done; echo "not ready: $1" >&2; exit 1; }
stop() { kill "$1"; wait "$1" 2>/dev/null || true; }
metric() { curl -s "http://$METRICS/metrics" | awk -v m="$1" '$1 == m {printf "%.0f\n", $2}'; }

# Other work on the machine: Go builds and tests.
foreign() { pgrep -a -f '^(\S*/)?(go|compile|link|vet|asm|cgo)( |$)|\.test( |$)'; }
touch "$RES/foreign.log"
(while sleep 0.5; do f=$(foreign | tr '\n' ' ') && echo "$(date +%T) $f" >>"$RES/foreign.log"; done) &
SAMPLER=$!
# On the way out, also the servers of a measurement cut short.
trap 'kill $SAMPLER ${PID:-} ${IDP_PID:-} ${BLPID:-} 2>/dev/null || true' EXIT
wait_quiet() { # three quiet seconds in a row, or give up after ten minutes
	local quiet=0 waited=0
	while [ $quiet -lt 3 ] && [ $waited -lt 600 ]; do
		if foreign >/dev/null; then quiet=0; else quiet=$((quiet + 1)); fi
		sleep 1
		waited=$((waited + 1))
	done
}
# clean CMD...: runs CMD when the machine is quiet, again if other work
# appeared meanwhile.
clean() {
	local n
	for try in 1 2 3; do
		wait_quiet
		n=$(wc -l <"$RES/foreign.log")
		"$@"
		[ "$(wc -l <"$RES/foreign.log")" = "$n" ] && return
		log "other work ran during: $* (try $try)"
	done
}

# start_webapp VAR=VALUE...: the app on $APP in a fresh directory $RUN;
# sets PID. Its log goes to $RUN.
start_webapp() {
	RUN=$(mktemp -d "$OUT/run.XXXX")
	(cd "$RUN" && exec env PORT=3001 APP_BASE_URL=$APP METRICS_ADDR=$METRICS "$@" "$BIN/webapp" >"$RUN/webapp.log" 2>"$RUN/webapp.err") &
	PID=$!
	wait_ok "$APP/healthz"
}
# start_devidp: cmd/devidp on $IDP with a client for the app; sets IDP_PID.
start_devidp() {
	local dir
	dir=$(mktemp -d "$OUT/idp.XXXX")
	"$BIN/devidp" -addr 127.0.0.1:9000 -issuer $IDP -key "$dir/key.pem" -client "app:app-secret:$APP/callback,$BASELOGIN/callback" >"$dir/log" 2>&1 &
	IDP_PID=$!
	wait_ok "$IDP/.well-known/openid-configuration"
}
OIDC=(OIDC_ISSUER=$IDP OIDC_CLIENT_ID=app OIDC_CLIENT_SECRET=app-secret)
# start_app PROVIDER: the app with the memory store and the embedded
# provider, or with the running cmd/devidp; sets PID and PIDS. It returns
# once the app has discovered the provider (with the memory store, the
# embedded provider makes its key after the app starts answering).
start_app() {
	if [ "$1" = devidp ]; then
		start_webapp SESSION_STORE=memory "${OIDC[@]}"
		PIDS=$PID,$IDP_PID
	else
		start_webapp SESSION_STORE=memory
		PIDS=$PID
	fi
	for _ in $(seq 2000); do
		[ "$(curl -s "$APP/readyz" | jq -r .provider.state)" = ok ] && return
		sleep 0.005
	done
	echo "provider not discovered" >&2
	exit 1
}
# start_pair PROVIDER: start_app, after starting cmd/devidp for "devidp".
start_pair() {
	if [ "$1" = devidp ]; then start_devidp; fi
	start_app "$1"
}
stop_pair() {
	stop $PID
	if [ "$1" = devidp ]; then stop $IDP_PID; fi
}

# 1. The signed-in page's size, for the baseline.
start_webapp SESSION_STORE=memory
SIZE=$($LT -app $APP -users 1 -requests 1 -duration 0 -json | jq .pages.page_bytes)
stop $PID
echo "signed-in page: $SIZE bytes" | tee "$RES/page-size.txt"

# 2. Page views, side by side: the baseline server and the app on each
# store, same concurrency and duration, $ROUNDS rounds.
pages_baseline() { # round
	log "round $1: baseline"
	$LT -serve-baseline -addr 127.0.0.1:3100 -size "$SIZE" >/dev/null &
	local bpid=$!
	wait_ok $BASE/
	$LT -app $BASE -users 0 -concurrency "$C" -duration "$D" -pids $bpid -json >"$RES/pages-baseline-$1.json"
	stop $bpid
}
pages_store() { # store round
	local loc schema=gologin_bench_$2 env=()
	log "round $2: $1"
	case $1 in
	memory) loc=memory ;;
	# The memory store with Go's default GC, which GOGC in the
	# environment restores (webapp keeps a heap floor otherwise).
	memory-gogc100) loc=memory env=(GOGC=100) ;;
	sqlite) loc=sqlite:sessions.db ;;
	redis) loc=$REDIS_URL ;;
	postgres)
		psql -q "$POSTGRES_URL" -c "SET client_min_messages = warning; DROP SCHEMA IF EXISTS $schema CASCADE; CREATE SCHEMA $schema"
		loc="$POSTGRES_URL&search_path=$schema" ;;
	esac
	start_webapp SESSION_STORE="$loc" "${env[@]}"
	$LT -app $APP -users 200 -concurrency "$C" -duration "$D" -pids $PID -json >"$RES/pages-$1-$2.json"
	stop $PID
	case $1 in
	redis) redis-cli -u "$REDIS_URL" --scan --pattern 'gologin:*' | xargs -r redis-cli -u "$REDIS_URL" del >/dev/null ;;
	postgres) psql -q "$POSTGRES_URL" -c "SET client_min_messages = warning; DROP SCHEMA $schema CASCADE" ;;
	esac
}
stores=(memory memory-gogc100 sqlite)
if [ -n "${REDIS_URL:-}" ]; then stores+=(redis); fi
if [ -n "${POSTGRES_URL:-}" ]; then stores+=(postgres); fi
# STORES="sqlite redis" RLIST=1 BASELINE=no redoes some of them.
read -r -a stores <<<"${STORES:-${stores[*]}}"
if part pages; then
	for r in ${RLIST:-$(seq "$ROUNDS")}; do
		if [ "${BASELINE:-yes}" = yes ]; then clean pages_baseline "$r"; fi
		for s in "${stores[@]}"; do clean pages_store "$s" "$r"; done
	done
fi

# 3. CPU per complete login (GET /login, the provider's form, /callback
# with the code exchange, ID token check and session write; loadtest
# checks /profile afterwards, unmeasured) with the memory store: cmd/devidp as
# another process, then the embedded provider. -pids makes loadtest read
# each process's utime+stime from /proc/PID/stat before and after. Side by
# side with cmd/devidp, in the same rounds: the login baseline, the same
# HTTP exchanges with net/http alone (loadtest -serve-baseline -provider).
login_cpu() { # provider run [url pids]
	log "login CPU: $1, run $2"
	$LT -app "${3:-$APP}" -users 2000 -concurrency 8 -duration 0 -requests 0 -pids "${4:-$PIDS}" -json >"$RES/login-cpu-$1-$2.json"
}
if part cpu; then
	for provider in devidp embedded; do
		start_pair $provider
		echo "$provider: pids $PIDS (webapp first)" >>"$RES/login-cpu-pids.txt"
		$LT -app $APP -users 200 -concurrency 8 -duration 0 -requests 0 >/dev/null # warm up
		if [ $provider = devidp ]; then
			$LT -serve-baseline -addr 127.0.0.1:3101 -size "$SIZE" -provider $IDP -client app:app-secret >/dev/null &
			BLPID=$!
			wait_ok $BASELOGIN/
			echo "baseline: pids $BLPID,$IDP_PID (baseline first)" >>"$RES/login-cpu-pids.txt"
			$LT -app $BASELOGIN -users 200 -concurrency 8 -duration 0 -requests 0 >/dev/null # warm up
		fi
		for i in 1 2 3; do
			clean login_cpu $provider $i
			if [ $provider = devidp ]; then clean login_cpu baseline $i $BASELOGIN $BLPID,$IDP_PID; fi
		done
		if [ $provider = devidp ]; then stop $BLPID; fi
		stop_pair $provider
	done
fi

# 4. Bursts of 64 concurrent logins, memory store: three right after the
# app starts, then five on a warmed-up app, per provider; then 2000 logins
# with 64 workers, and the same with the login baseline. The embedded
# provider starts with the app; cmd/devidp keeps running while the app
# restarts.
burst() { # provider run
	log "64 concurrent logins: $1, burst $2"
	$LT -app $APP -users 64 -concurrency 64 -duration 0 -requests 0 -pids "$PIDS" -json >"$RES/burst64-$1-$2.json"
}
sustained() { # provider [url pids]
	log "2000 logins, 64 workers: $1"
	$LT -app "${2:-$APP}" -users 2000 -concurrency 64 -duration 0 -requests 0 -pids "${3:-$PIDS}" -json >"$RES/sustained64-$1.json"
}
# The login baseline with 64 workers, against the running cmd/devidp.
sustained_baseline() {
	$LT -serve-baseline -addr 127.0.0.1:3101 -size "$SIZE" -provider $IDP -client app:app-secret >/dev/null &
	BLPID=$!
	wait_ok $BASELOGIN/
	$LT -app $BASELOGIN -users 200 -concurrency 8 -duration 0 -requests 0 >/dev/null # warm up
	clean sustained baseline $BASELOGIN $BLPID,$IDP_PID
	stop $BLPID
}
burst_cold() { # provider run: the first burst after the app starts
	start_app $1
	burst $1 cold-$2
	stop $PID
}
if part burst; then
	for provider in embedded devidp; do
		if [ $provider = devidp ]; then
			# cmd/devidp stands for a provider that has been running, as a
			# real one has: it starts once and serves a warm-up, and only
			# the app restarts for the cold bursts.
			start_pair devidp
			$LT -app $APP -users 128 -concurrency 64 -duration 0 -requests 0 >/dev/null
			stop $PID
		fi
		for b in 1 2 3; do clean burst_cold $provider $b; done
		start_app $provider
		$LT -app $APP -users 64 -concurrency 8 -duration 0 -requests 0 >/dev/null # warm up
		for b in 1 2 3 4 5; do clean burst $provider $b; done
		clean sustained $provider
		if [ $provider = devidp ]; then sustained_baseline; fi
		stop_pair $provider
	done
fi

# 5. Heap per live session, memory store, provider in its own process: the
# heap after a GC with 200 sessions, then with 10,200 (each a session
# record and an auxiliary tokens record). GODEBUG=gctrace=1
# logs the live heap each GC marks; wait_gc waits for the next GC after
# the load (the runtime forces one when none ran for two minutes).
wait_gc() {
	local n0
	n0=$(metric go_gc_duration_seconds_count)
	while [ "$(metric go_gc_duration_seconds_count)" = "$n0" ]; do sleep 5; done
	sleep 1
}
heap() {
	echo "$1 sessions=$(metric webapp_live_sessions) heap_inuse=$(metric go_memstats_heap_inuse_bytes)" \
		"heap_alloc=$(metric go_memstats_heap_alloc_bytes) rss_kb=$(awk '/VmRSS/ {print $2}' /proc/$PID/status)" \
		"gctrace_last='$(grep '^gc ' "$RUN/webapp.err" | tail -n 1)'"
}
if part memory; then
	log "memory per session"
	start_devidp
	start_webapp SESSION_STORE=memory GODEBUG=gctrace=1 "${OIDC[@]}"
	$LT -app $APP -users 200 -concurrency 16 -duration 0 -requests 0 >/dev/null
	wait_gc
	heap before | tee "$RES/memory.txt"
	$LT -app $APP -users 10000 -concurrency 16 -duration 0 -requests 0 -json >"$RES/memory-logins.json"
	sleep 180 # deleted pre-login sessions stay revoked for two minutes: let them go
	wait_gc
	heap after | tee -a "$RES/memory.txt"
	stop $PID
	stop $IDP_PID
fi

# 6. Startup to the first 200 from /healthz with SQLite: 10 cold starts,
# each in an empty directory (creating the database and the development
# provider's RSA key), then 20 warm starts reusing one directory.
startup() { # name count directory
	log "startup: $1"
	(cd "$3" && env PORT=3001 APP_BASE_URL=$APP METRICS_ADDR=$METRICS SESSION_STORE=sqlite:sessions.db \
		"$LT" -startup "$2" -app $APP -json -- "$BIN/webapp" >"$RES/startup-$1.json")
}
if part startup; then
	for i in $(seq 10); do clean startup "cold-$i" 1 "$(mktemp -d "$OUT/start.XXXX")"; done
	STARTDIR=$(mktemp -d "$OUT/start.XXXX")
	startup first 1 "$STARTDIR" # creates the database and key
	clean startup warm 20 "$STARTDIR"
fi

# 7. The Go benchmarks (internal/app/bench_test.go), five times each, then
# CPU profiles of a signed-in page and a login, memory store.
gobench() {
	log "go benchmarks"
	TEST_REDIS_URL=${REDIS_URL:-} TEST_POSTGRES_URL=${POSTGRES_URL:-} \
		"$BIN/appbench" -test.run '^$' -test.bench . -test.benchmem -test.count 5 2>&1 | grep -v '^level=' >"$RES/gobench.txt"
}
profiles() {
	log "profiles"
	(cd "$RES" && "$BIN/appbench" -test.run '^$' -test.bench 'SignedInPage/memory' -test.benchtime 5s -test.cpuprofile page.cpu >/dev/null &&
		"$BIN/appbench" -test.run '^$' -test.bench 'Login/memory' -test.benchtime 5s -test.cpuprofile login.cpu >/dev/null)
}
if part gobench; then
	clean gobench
	clean profiles
	kill $SAMPLER
	go tool pprof -top -cum -nodecount 45 -focus 'App..ServeHTTP' "$BIN/appbench" "$RES/page.cpu" >"$RES/page-top-cum.txt" 2>/dev/null
	go tool pprof -top -nodecount 30 "$BIN/appbench" "$RES/page.cpu" >"$RES/page-top-flat.txt" 2>/dev/null
	go tool pprof -top -cum -nodecount 60 -focus 'benchSignIn' "$BIN/appbench" "$RES/login.cpu" >"$RES/login-top-cum.txt" 2>/dev/null
fi

# A summary of the results (of the parts that ran).
shopt -s nullglob
log done
echo "page views: file, requests/s, p50 ms, p99 ms, failures, server CPU µs/request"
for f in "$RES"/pages-*.json; do
	jq -r --arg f "$(basename "$f" .json)" '[$f, (.pages.per_second | floor), .pages.p50_ms, .pages.p99_ms, .pages.failures,
		(.pages.server_cpu_us_per_op // {} | [.[]] | first // "-")] | @tsv' "$f"
done
echo "logins: file, logins/s, p50 ms, p99 ms, failures, CPU µs/login by PID"
for f in "$RES"/login-cpu-*.json "$RES"/burst64-*.json "$RES"/sustained64-*.json; do
	jq -r --arg f "$(basename "$f" .json)" '[$f, (.login.per_second | floor), .login.p50_ms, .login.p99_ms, .login.failures,
		(.login.server_cpu_us_per_op // {} | tostring)] | @tsv' "$f"
done
cat "$RES/login-cpu-pids.txt" "$RES/memory.txt" 2>/dev/null || true
for f in "$RES"/startup-*.json; do jq -r --arg f "$(basename "$f" .json)" '[$f, .p50_ms, .max_ms] | @tsv' "$f"; done
