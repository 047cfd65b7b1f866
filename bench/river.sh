#!/usr/bin/env bash
# bench/river.sh sets rpt's queue beside River (github.com/riverqueue/river, run by
# a River benchmark program outside this repository, RIVERBENCH, on the local PostgreSQL) on this machine, in alternating rounds,
# and prints markdown for BENCHMARKS.md: each figure with the load average when it was
# taken, and the ratio rpt / River of the same round.
#
#   burndown   River: -mode burndown -n N -workers 1000 (defaults; and -fetch-cooldown 1ms)
#              rpt, in process: BenchmarkAgentDrain (the real agent package, concurrency
#              RPT_RIVER_CONC, one-row jobs queued first)
#              rpt, processes: RPT_RIVER_AGENTS `rpt agent` processes (each --concurrency
#              RPT_RIVER_CONC) draining N one-row jobs queued first with `rpt submit --from`,
#              timed from their start to the last success (counted in the queue)
#   latency    River: -mode latency -fetch-cooldown 1ms (tuned) at RPT_RIVER_RATE/s
#              rpt, in process: BenchmarkSubmitToRunning/mosquitto (MQTT wake-up)
#              rpt, processes: `rpt submit` (a new process each time) to the job's
#              started_at, one `rpt agent` woken over MQTT
#
# Environment: RPT_TEST_MYSQL_DSN (default mysql://root@127.0.0.1:3306/), RPT_TEST_MQTT
# (default tcp://127.0.0.1:1883), RPT_RIVER_ROUNDS (2), RPT_RIVER_JOBS (5000),
# RPT_RIVER_AGENTS (4), RPT_RIVER_CONC (64), RPT_RIVER_RATE (100), RIVERBENCH (the
# riverbench source, default /work/shared/riverbench; copied, never changed),
# RPT_BENCH_OUT (raw outputs; default a new temp dir, kept), RPT_RIVER_BASE (a git revision:
# when set, its rpt and bench test binary run the same rpt steps in the same rounds, each
# right after the current tree's, and a "new / base" row follows each pair: what the
# changes since that revision bought, measured side by side).
# Nothing here fails on a time: only a failed step fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export RPT_TEST_MYSQL_DSN=${RPT_TEST_MYSQL_DSN:-mysql://root@127.0.0.1:3306/}
export RPT_TEST_MQTT=${RPT_TEST_MQTT:-tcp://127.0.0.1:1883}
ROUNDS=${RPT_RIVER_ROUNDS:-2}
N=${RPT_RIVER_JOBS:-5000}
AGENTS=${RPT_RIVER_AGENTS:-4}
CONC=${RPT_RIVER_CONC:-64}
RATE=${RPT_RIVER_RATE:-100}
RIVERBENCH=${RIVERBENCH:-/work/shared/riverbench}
OUT=${RPT_BENCH_OUT:-$(mktemp -d /tmp/rpt-river.XXXXXX)}
GO=${GO:-go}
mkdir -p "$OUT"

load() { cut -d' ' -f1 /proc/loadavg; }
log() { echo "river.sh: $*" >&2; }
MDB=(mariadb -uroot -h127.0.0.1 -P3306)

WORK=$(mktemp -d /tmp/rpt-river-work.XXXXXX)
PIDS=()
DB=rpt_river_$$
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	"${MDB[@]}" -e "DROP DATABASE IF EXISTS $DB" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

# PostgreSQL for River.
if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
	log "starting PostgreSQL"
	pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
fi
PGURL='postgres://postgres:postgres@127.0.0.1:5432/riverbench_rpt?sslmode=disable'

log "building riverbench, rpt and the bench test binary"
cp -r "$RIVERBENCH" "$WORK/riverbench"
(cd "$WORK/riverbench" && $GO build -o "$WORK/riverbench.bin" .)
$GO build -o "$WORK/rpt" ./cmd/rpt
$GO test -c -o "$WORK/bench.test" ./bench/
RPT=$WORK/rpt
BASE=${RPT_RIVER_BASE:-}
if [ -n "$BASE" ]; then
	log "building rpt and the bench test binary at $BASE"
	mkdir -p "$WORK/base"
	git archive "$BASE" | tar -x -C "$WORK/base"
	(cd "$WORK/base" && $GO build -o "$WORK/rpt.base" ./cmd/rpt && $GO test -c -o "$WORK/bench.base.test" ./bench/)
fi

# The rpt side's files: a MariaDB queue, a SQLite source, a one-row report in the
# agents' reports folder (so they trust it), N empty parameter sets.
mkdir -p "$WORK/defs"
printf 'name: noop\nsource: db\nsql: SELECT 1 AS one\n' >"$WORK/defs/noop.yaml"
python3 -c "import sqlite3,sys; sqlite3.connect(sys.argv[1]).execute('CREATE TABLE t (x INTEGER)')" "$WORK/src.db"
python3 -c "import sys; sys.stdout.write('{}\\n' * int(sys.argv[1]))" "$N" >"$WORK/jobs.jsonl"
# A pool of 16 per agent process: the agents' default (2 + 2 x concurrency) times four
# would pass the server's max_connections, and batched completions need few.
QUEUE="${RPT_TEST_MYSQL_DSN%/}/$DB?max_open_conns=16"
cat >"$WORK/rpt.yaml" <<EOF
queue: "$QUEUE"
mqtt: "$RPT_TEST_MQTT"
reports: ["$WORK/defs"]
sources:
  db: {driver: sqlite, dsn: "sqlite:$WORK/src.db"}
EOF
export RPT_CONFIG=$WORK/rpt.yaml

fresh_queue() {
	"${MDB[@]}" -e "DROP DATABASE IF EXISTS $DB; CREATE DATABASE $DB"
	"$RPT" db migrate >/dev/null
}
succeeded() { "${MDB[@]}" -N -B -e "SELECT COUNT(*) FROM $DB.rpt_jobs WHERE status = 'succeeded'" 2>/dev/null || echo 0; }

# rpt_agents_burndown prints jobs/s of AGENTS real agent processes draining N jobs.
rpt_agents_burndown() {
	fresh_queue
	local t0 t1 sub
	t0=$(date +%s.%N)
	"$RPT" submit noop --from "$WORK/jobs.jsonl" >/dev/null
	t1=$(date +%s.%N)
	sub=$(python3 -c "print(f'{$N/($t1-$t0):.0f}')")
	t0=$(date +%s.%N)
	for i in $(seq "$AGENTS"); do
		"$RPT" agent --name "river-agent-$i" --concurrency "$CONC" --poll 100ms --listen "" >"$OUT/agent-$i.log" 2>&1 &
		PIDS+=($!)
	done
	while (($(succeeded) < N)); do sleep 0.02; done
	t1=$(date +%s.%N)
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	wait "${PIDS[@]}" 2>/dev/null || true
	PIDS=()
	local failed
	failed=$("${MDB[@]}" -N -B -e "SELECT COUNT(*) FROM $DB.rpt_jobs WHERE status <> 'succeeded'")
	((failed == 0)) || { log "rpt agents: $failed jobs not succeeded"; exit 1; }
	python3 -c "print(f'{$N/($t1-$t0):.0f} {$sub}')"
}

# rpt_submit_latency prints the p50 and p95 ms from `rpt submit` (a new process) to
# the job's started_at, with one agent woken over MQTT (poll 10s: a poll would show).
rpt_submit_latency() {
	fresh_queue
	"$RPT" agent --name river-lat --concurrency 8 --poll 10s --listen "" >"$OUT/agent-lat.log" 2>&1 &
	PIDS+=($!)
	sleep 1.5
	: >"$WORK/lat.txt"
	for _ in $(seq 60); do
		local t0 id
		t0=$(date +%s.%N)
		id=$("$RPT" submit noop)
		echo "$id $t0" >>"$WORK/lat.txt"
		sleep 0.05
	done
	sleep 1
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	wait "${PIDS[@]}" 2>/dev/null || true
	PIDS=()
	"${MDB[@]}" -N -B -e "SELECT id, UNIX_TIMESTAMP(started_at) FROM $DB.rpt_jobs" >"$WORK/started.txt"
	python3 - "$WORK/lat.txt" "$WORK/started.txt" <<'EOF'
import sys
sub = {l.split()[0]: float(l.split()[1]) for l in open(sys.argv[1]) if l.strip()}
st = {l.split()[0]: float(l.split()[1]) for l in open(sys.argv[2]) if l.strip() and l.split()[1] != 'NULL'}
lat = sorted((st[i] - t) * 1000 for i, t in sub.items() if i in st)
if len(lat) != len(sub):
    sys.exit(f"{len(sub) - len(lat)} jobs never started")
p = lambda q: lat[min(len(lat) - 1, max(0, int(q * len(lat) + 0.5) - 1))]
print(f"{p(0.5):.1f} {p(0.95):.1f}")
EOF
}

field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }
benchmetric() { awk -v m="$1" '/^Benchmark/ { for (i = 3; i < NF; i++) if ($(i+1) == m) print $i }'; }

echo "## rpt beside River ($(date -u '+%Y-%m-%d %H:%M') UTC, $(nproc) CPUs, $ROUNDS rounds, $N jobs)"
echo
echo "| round | what | River | rpt | rpt / River | load (1 min) |"
echo "|---|---|---:|---:|---:|---|"
for r in $(seq "$ROUNDS"); do
	l=$(load)
	rdef=$("$WORK/riverbench.bin" -db "$PGURL" -mode burndown -n "$N" -workers 1000 2>"$OUT/river-$r.err" | field jobs_per_sec)
	rtun=$("$WORK/riverbench.bin" -db "$PGURL" -mode burndown -n "$N" -workers 1000 -fetch-cooldown 1ms 2>>"$OUT/river-$r.err" | field jobs_per_sec)
	log "round $r: River burndown $rdef (default) $rtun (tuned); load $l"
	drain() { (cd bench && "$1" -test.run '^$' -test.bench "AgentDrain/mysql/conc=$CONC\$" -test.benchtime "${N}x"); }
	drain "$WORK/bench.test" >"$OUT/drain-$r.txt" 2>&1
	inproc=$(benchmetric jobs/s <"$OUT/drain-$r.txt")
	percommit=$(benchmetric jobs/commit <"$OUT/drain-$r.txt")
	if [ -n "$BASE" ]; then
		lb=$(load)
		drain "$WORK/bench.base.test" >"$OUT/drain-base-$r.txt" 2>&1
		binproc=$(benchmetric jobs/s <"$OUT/drain-base-$r.txt")
	fi
	l2=$(load)
	read -r procs subrate < <(rpt_agents_burndown)
	l3=$(load)
	if [ -n "$BASE" ]; then
		read -r bprocs bsubrate < <(RPT=$WORK/rpt.base rpt_agents_burndown)
		lb3=$(load)
	fi
	log "round $r: rpt in process $inproc jobs/s ($percommit jobs/commit), $AGENTS agents $procs jobs/s (submit --from $subrate jobs/s)"
	ratio() { python3 -c "print(f'{$1/$2:.3f}x')"; }
	echo "| $r | burndown, River defaults vs rpt in process (agent package, concurrency $CONC; $percommit completions per commit) | $rdef | $inproc | $(ratio "$inproc" "$rdef") | $l |"
	echo "| $r | burndown, River tuned (-fetch-cooldown 1ms) vs rpt in process | $rtun | $inproc | $(ratio "$inproc" "$rtun") | $l2 |"
	echo "| $r | burndown, River defaults vs $AGENTS \`rpt agent\` processes (each concurrency $CONC) | $rdef | $procs | $(ratio "$procs" "$rdef") | $l3 |"
	if [ -n "$BASE" ]; then
		echo "| $r | burndown, River defaults vs rpt in process at $BASE | $rdef | $binproc | $(ratio "$binproc" "$rdef") | $lb |"
		echo "| $r | burndown, rpt in process: new / $BASE | | | $(ratio "$inproc" "$binproc") | |"
		echo "| $r | burndown, River defaults vs $AGENTS \`rpt agent\` processes at $BASE | $rdef | $bprocs | $(ratio "$bprocs" "$rdef") | $lb3 |"
		echo "| $r | burndown, $AGENTS \`rpt agent\` processes: new / $BASE | | | $(ratio "$procs" "$bprocs") | |"
	fi
	echo "| $r | enqueue: River InsertMany vs \`rpt submit --from\` ($N jobs, one transaction) | $(field jobs_per_sec <"$OUT/river-$r.err" | head -1) | $subrate | $(ratio "$subrate" "$(field jobs_per_sec <"$OUT/river-$r.err" | head -1)") | $l3 |"

	l=$(load)
	rlat=$("$WORK/riverbench.bin" -db "$PGURL" -mode latency -rate "$RATE" -duration 5s -fetch-cooldown 1ms 2>>"$OUT/river-$r.err")
	rp50=$(echo "$rlat" | field p50_ms)
	pickup() { (cd bench && "$1" -test.run '^$' -test.bench 'SubmitToRunning/mosquitto' -test.benchtime 200x); }
	pickup "$WORK/bench.test" >"$OUT/pickup-$r.txt" 2>&1
	ip50=$(benchmetric p50-ms <"$OUT/pickup-$r.txt")
	if [ -n "$BASE" ]; then
		lb=$(load)
		pickup "$WORK/bench.base.test" >"$OUT/pickup-base-$r.txt" 2>&1
		bip50=$(benchmetric p50-ms <"$OUT/pickup-base-$r.txt")
	fi
	read -r sp50 sp95 < <(rpt_submit_latency)
	l2=$(load)
	if [ -n "$BASE" ]; then
		read -r bsp50 bsp95 < <(RPT=$WORK/rpt.base rpt_submit_latency)
		lb2=$(load)
	fi
	log "round $r: latency p50 River tuned $rp50 ms, rpt in process $ip50 ms, rpt submit process $sp50 ms (p95 $sp95)"
	echo "| $r | submit -> running p50 ms, River tuned vs rpt in process (MQTT wake-up, Mosquitto) | $rp50 | $ip50 | $(ratio "$ip50" "$rp50") | $l |"
	echo "| $r | submit -> running p50 ms, \`rpt submit\` process -> started_at (agent woken over MQTT; p95 $sp95) | $rp50 | $sp50 | $(ratio "$sp50" "$rp50") | $l2 |"
	if [ -n "$BASE" ]; then
		echo "| $r | submit -> running p50 ms, River tuned vs rpt in process at $BASE | $rp50 | $bip50 | $(ratio "$bip50" "$rp50") | $lb |"
		echo "| $r | submit -> running p50 ms in process: new / $BASE | | | $(ratio "$ip50" "$bip50") | |"
		echo "| $r | submit -> running p50 ms, \`rpt submit\` process at $BASE (p95 $bsp95) | $rp50 | $bsp50 | $(ratio "$bsp50" "$rp50") | $lb2 |"
		echo "| $r | submit -> running p50 ms, \`rpt submit\` process: new / $BASE | | | $(ratio "$sp50" "$bsp50") | |"
	fi
done
echo
echo "Raw outputs: $OUT"
