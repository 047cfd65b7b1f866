#!/usr/bin/env bash
# bench/run.sh runs rpt's benchmarks and prints them as the markdown of BENCHMARKS.md:
# the machine, the Go benchmarks of ./bench (queue throughput, pickup latency, claim
# cost, the MariaDB floor, SQL prototypes of faster completes and enqueues), then the process-level figures of a big result: an `rpt
# agent` streaming it (peak RSS and Go heap), `rpt get --csv` of it (time, peak RSS and
# heap) next to the mariadb client fetching the same SELECT, in the same run.
#
# Environment:
#   RPT_TEST_MYSQL_DSN  server to use (default mysql://root@127.0.0.1:3306/); every part
#                       creates its own database and drops it at the end
#   RPT_BENCH_BIG=1     the heavy parts: 1,000,000 finished + 100,000 queued jobs for the
#                       claim cost, and a 5,000,000-row result (else 200,000 rows)
#   RPT_BENCH_ROWS=N    rows of the big result (overrides the above; at most 5000000)
#   RPT_BENCH_OUT=DIR   where raw outputs go (default a new temp dir, kept)
#   RPT_BENCH_QUICK=1   fewer iterations (a smoke run of the script, not figures)
#   RPT_BENCH_PARTS     which parts to run (default "go big": Go benchmarks, big result)
#   RPT_BIN=PATH        an rpt binary to measure instead of building ./cmd/rpt
#
# The machine is shared and noisy: the load average is printed with each part, and
# only figures of one run should be compared with each other. Nothing here fails on a
# time; the script fails only when a step fails.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
export RPT_TEST_MYSQL_DSN=${RPT_TEST_MYSQL_DSN:-mysql://root@127.0.0.1:3306/}
BIG=${RPT_BENCH_BIG:-0}
export RPT_BENCH_BIG=$BIG
if [[ $BIG == 1 ]]; then ROWS=${RPT_BENCH_ROWS:-5000000}; else ROWS=${RPT_BENCH_ROWS:-200000}; fi
OUT=${RPT_BENCH_OUT:-$(mktemp -d /tmp/rpt-bench.XXXXXX)}
mkdir -p "$OUT"
QUICK=${RPT_BENCH_QUICK:-0}
PARTS=${RPT_BENCH_PARTS:-go big}
GO=${GO:-go}

for tool in mariadb python3 /usr/bin/time; do
	command -v "$tool" >/dev/null || { echo "bench/run.sh: $tool is needed" >&2; exit 1; }
done

# Server coordinates for the mariadb client, from the DSN.
read -r DB_USER DB_PASS DB_HOST DB_PORT < <(python3 - "$RPT_TEST_MYSQL_DSN" <<'EOF'
import sys, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
print(urllib.parse.unquote(u.username or "root"), urllib.parse.unquote(u.password or "") or "-", u.hostname or "127.0.0.1", u.port or 3306)
EOF
)
[[ $DB_PASS == - ]] && DB_PASS=
[[ -n $DB_PASS ]] && export MYSQL_PWD=$DB_PASS
MDB=(mariadb -u"$DB_USER" -h"$DB_HOST" -P"$DB_PORT")
mdb() { "${MDB[@]}" "$@"; }

load() { cut -d' ' -f1-3 /proc/loadavg; }
log() { echo "run.sh: $*" >&2; }

# The binary is built first, from the tree as it is when the run starts.
WORK=$(mktemp -d /tmp/rpt-bench-work.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
if [[ -n ${RPT_BIN:-} ]]; then
	RPT=$RPT_BIN
elif [[ " $PARTS " == *" big "* ]]; then
	log "building rpt"
	$GO build -o "$WORK/rpt" ./cmd/rpt
	RPT=$WORK/rpt
fi

# ---- the machine ---------------------------------------------------------------
{
	echo "## Machine"
	echo
	echo "| | |"
	echo "|---|---|"
	echo "| date (UTC) | $(date -u '+%Y-%m-%d %H:%M') |"
	echo "| CPUs (nproc) | $(nproc) |"
	echo "| CPU model | $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') |"
	echo "| RAM | $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) |"
	echo "| kernel | $(uname -r) |"
	echo "| MariaDB | $(mdb -N -B -e 'SELECT VERSION()') (innodb_buffer_pool_size $(mdb -N -B -e 'SELECT @@innodb_buffer_pool_size DIV 1048576') MiB, innodb_flush_log_at_trx_commit $(mdb -N -B -e 'SELECT @@innodb_flush_log_at_trx_commit'); same machine, TCP 127.0.0.1) |"
	echo "| Go | $($GO env GOVERSION) |"
	echo "| load average at start (1, 5, 15 min) | $(load) |"
	echo
} | tee "$OUT/machine.md"

# ---- Go benchmarks -------------------------------------------------------------
# benchtable turns `go test -bench` lines into markdown rows: name, iterations, metrics.
benchtable() {
	echo "| benchmark | n | ns/op | metrics |"
	echo "|---|---:|---:|---|"
	awk '/^Benchmark/ {
		name = $1; sub(/-[0-9]+$/, "", name); sub(/^Benchmark/, "", name)
		m = ""
		for (i = 5; i < NF; i += 2) m = m (m == "" ? "" : ", ") $i " " $(i+1)
		printf "| %s | %s | %s | %s |\n", name, $2, $3, m
	}'
}

gobench() { # name pattern benchtime
	local name=$1 pattern=$2 benchtime=$3
	[[ $QUICK == 1 ]] && benchtime=20x
	log "go benchmarks $name (-bench '$pattern' -benchtime $benchtime); load $(load)"
	echo "### $name"
	echo
	echo "Load average before: $(load)."
	echo
	$GO test -run '^$' -bench "$pattern" -benchtime "$benchtime" -timeout 60m ./bench/... >"$OUT/$name.txt" 2>&1 || {
		cat "$OUT/$name.txt" >&2; exit 1; }
	benchtable <"$OUT/$name.txt"
	echo
	echo "Load average after: $(load)."
	echo
}

if [[ " $PARTS " == *" go "* ]]; then
	{
		echo "## Go benchmarks (\`go test -run '^\$' -bench . ./bench/...\`)"
		echo
		gobench floor 'MariaDBFloor' 1s
		gobench noop-jobs 'NoopJobs' 3000x
		gobench pickup-latency 'PickupLatency' 300x
		gobench claim-cost 'ClaimCost' 2s
		gobench prototypes 'CompleteVariants|EnqueueVariants' 3000x
	} | tee "$OUT/go.md"
fi
[[ " $PARTS " == *" big "* ]] || exit 0

# ---- a big result through the rpt binary --------------------------------------
DB=rpt_bench_$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
AGENT_PID=
cleanup() {
	[[ -n $AGENT_PID ]] && kill "$AGENT_PID" 2>/dev/null || true
	mdb -e "DROP DATABASE IF EXISTS \`$DB\`" || true
	rm -rf "$WORK"
}
trap cleanup EXIT

mdb -e "CREATE DATABASE \`$DB\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
DB_DSN=${RPT_TEST_MYSQL_DSN%/}/$DB
cat >"$WORK/rpt.yaml" <<EOF
queue: "$DB_DSN"
reports: "$ROOT/bench/reports"
sources:
  benchdb: {driver: mysql, dsn: "$DB_DSN"}
EOF
export RPT_CONFIG=$WORK/rpt.yaml
"$RPT" db migrate 2>>"$OUT/rpt.log"

# The SELECT the report runs, for the mariadb client (the definition binds :rows).
SELECT_SQL=$(python3 - "$ROOT/bench/reports/bench-rows.yaml" "$ROWS" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
sql = text.split("sql: |", 1)[1]
sql = "\n".join(l[2:] if l.startswith("  ") else l for l in sql.splitlines())
print(" ".join(sql.split()).replace(":rows", sys.argv[2]))
EOF
)

# peakheap prints the largest heap size (MB) at the start of a GC cycle in a
# GODEBUG=gctrace=1 log: the high-water mark of the Go heap, to within one cycle.
peakheap() {
	grep -o '[0-9]*->[0-9]*->[0-9]* MB' "$1" | awk -F'->' 'BEGIN {m = 0} {if ($1 + 0 > m) m = $1 + 0} END {print m}'
}

log "agent streams $ROWS rows; load $(load)"
LOAD_AGENT=$(load)
GODEBUG=gctrace=1 "$RPT" agent --poll 100ms --name bench-agent --concurrency 1 >"$OUT/agent.out" 2>"$OUT/agent.err" &
AGENT_PID=$!
peak_rss=0
agent_ticks=0
sample() {
	local kb ticks
	kb=$(awk '/VmHWM/ {print $2}' "/proc/$AGENT_PID/status" 2>/dev/null || echo 0)
	((kb > peak_rss)) && peak_rss=$kb
	# utime + stime (fields 14, 15; the command name has no spaces)
	ticks=$(awk '{print $14 + $15}' "/proc/$AGENT_PID/stat" 2>/dev/null || echo 0)
	((ticks > agent_ticks)) && agent_ticks=$ticks
	return 0
}
JOB=$("$RPT" submit bench-rows -p rows="$ROWS" 2>>"$OUT/rpt.log")
while :; do
	sample
	status=$("$RPT" jobs show "$JOB" -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
	case $status in
	succeeded) break ;;
	failed | cancelled) log "job $JOB $status"; "$RPT" jobs show "$JOB" >&2; exit 1 ;;
	esac
	sleep 0.2
done
sample
kill -INT "$AGENT_PID"
wait "$AGENT_PID" || true
AGENT_PID=
read -r JOB_SECS JOB_ROWS < <("$RPT" jobs show "$JOB" -o json | python3 -c '
import json, sys, datetime
j = json.load(sys.stdin)
p = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
print((p(j["finished_at"]) - p(j["started_at"])).total_seconds(), j["rows"])')
AGENT_HEAP=$(peakheap "$OUT/agent.err")
STORED=$(mdb -N -B "$DB" -e "SELECT COUNT(*), SUM(LENGTH(data)) FROM rpt_results WHERE job_id = $JOB")

# timed NAME CMD...: runs CMD with stdout to /dev/null under /usr/bin/time; appends
# "NAME wall_seconds user_seconds sys_seconds maxrss_kb" to $OUT/timed.txt.
timed() {
	local name=$1
	shift
	/usr/bin/time -f '%e %U %S %M' -o "$OUT/time.tmp" "$@" >/dev/null 2>"$OUT/$name.err"
	echo "$name $(cat "$OUT/time.tmp")" >>"$OUT/timed.txt"
}

: >"$OUT/timed.txt"
ROUNDS=5
[[ $QUICK == 1 ]] && ROUNDS=1
LOAD_GET=$(load)
for r in $(seq 1 $ROUNDS); do
	log "round $r: rpt get --csv, mariadb -B, mariadb -B --quick; load $(load)"
	GODEBUG=gctrace=1 timed "get-$r" "$RPT" get "$JOB" --csv
	cp "$OUT/get-$r.err" "$OUT/get-gctrace-$r.txt"
	timed "mariadb-$r" "${MDB[@]}" -B "$DB" -e "$SELECT_SQL"
	timed "mariadbq-$r" "${MDB[@]}" -B --quick "$DB" -e "$SELECT_SQL"
done
LOAD_END=$(load)
# The outputs are the same bytes (checked once, untimed).
GET_BYTES=$("$RPT" get "$JOB" --csv | wc -c)
MDB_BYTES=$(mdb -B "$DB" -e "$SELECT_SQL" | wc -c)
GET_HEAP=$(for r in $(seq 1 $ROUNDS); do peakheap "$OUT/get-gctrace-$r.txt"; done | sort -n | tail -1)

AGENT_CPU=$(awk -v t="$agent_ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", t / hz}')
python3 - "$OUT/timed.txt" "$ROWS" "$JOB_SECS" "$JOB_ROWS" "$peak_rss" "$AGENT_HEAP" "$GET_HEAP" "$AGENT_CPU" \
	"$GET_BYTES" "$MDB_BYTES" "$STORED" "$LOAD_AGENT" "$LOAD_GET" "$LOAD_END" <<'EOF' | tee "$OUT/big.md"
import statistics, sys
(timed, rows, job_secs, job_rows, agent_rss, agent_heap, get_heap, agent_cpu,
 get_bytes, mdb_bytes, stored, l1, l2, l3) = sys.argv[1:]
rows, job_rows = int(rows), int(job_rows)
runs = {}
for line in open(timed):
    name, wall, user, sys_, kb = line.split()
    kind, rnd = name.rsplit("-", 1)
    runs.setdefault(kind, []).append((int(rnd), float(wall), float(user) + float(sys_), int(kb)))
chunks, stored_bytes = stored.split("\t")
mib = lambda kb: kb / 1024
print(f"## A {rows:,}-row result through the rpt binary")
print()
print(f"Report `bench/reports/bench-rows.yaml` (SELECT over seq_1_to_5000000, 5 columns), "
      f"CSV {int(get_bytes):,} bytes (`rpt get`) / {int(mdb_bytes):,} bytes (mariadb -B); "
      f"stored as {int(chunks):,} gzip chunks, {int(stored_bytes or 0)/1048576:.1f} MiB. "
      f"Load average: {l1} when the agent started, {l2} before the first round, {l3} at the end.")
print()
print("| process | rows | wall (median) | rows/s (median wall) | client CPU user+sys (median) | peak RSS (max) | peak Go heap |")
print("|---|---:|---:|---:|---:|---:|---:|")
jr = float(job_secs)
print(f"| `rpt agent`: query -> gzip chunks -> MariaDB | {job_rows:,} | {jr:.2f} s | {job_rows/jr:,.0f} | "
      f"{float(agent_cpu):.2f} s | {mib(int(agent_rss)):.1f} MiB | {agent_heap} MB |")
labels = {"get": "`rpt get ID --csv > /dev/null`", "mariadb": "`mariadb -B -e 'SELECT ...' > /dev/null`",
          "mariadbq": "`mariadb -B --quick -e 'SELECT ...' > /dev/null`"}
med = {}
for kind in ("get", "mariadb", "mariadbq"):
    r = runs.get(kind, [])
    if not r:
        continue
    wall = statistics.median(x[1] for x in r)
    cpu = statistics.median(x[2] for x in r)
    rss = max(x[3] for x in r)
    med[kind] = (wall, cpu)
    heap = f"{get_heap} MB" if kind == "get" else "n/a (C)"
    print(f"| {labels[kind]}, {len(r)} rounds | {rows:,} | {wall:.2f} s | {rows/max(wall, 1e-9):,.0f} | {cpu:.2f} s | {mib(rss):.1f} MiB | {heap} |")
print()
print("Per round (alternating get, -B, -B --quick), wall seconds:")
print()
for kind in ("get", "mariadb", "mariadbq"):
    print(f"- {labels[kind]}: " + ", ".join(f"{x[1]:.2f}" for x in runs.get(kind, [])))
print()
def ratio(a, b):
    ra = [x[1] / y[1] for x, y in zip(runs.get(a, []), runs.get(b, []))]
    return statistics.median(ra) if ra else float("nan")
if "get" in med and "mariadb" in med:
    print(f"`rpt get --csv` / `mariadb -B`: median per-round wall ratio {ratio('get', 'mariadb'):.2f}, "
          f"client CPU ratio {med['get'][1] / med['mariadb'][1]:.2f}; / `mariadb -B --quick`: wall {ratio('get', 'mariadbq'):.2f}, "
          f"client CPU {med['get'][1] / med['mariadbq'][1]:.2f} (below 1: rpt get is faster).")
EOF
log "raw outputs in $OUT"
