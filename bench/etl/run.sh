#!/usr/bin/env bash
# bench/etl/run.sh: an ETL full load of one table of N rows (default 1,000,000) by
# `rpt etl run` (LOAD DATA LOCAL INFILE from a stream) next to `mariadb-dump | mariadb`
# of the same table, in the same run, alternating, on the same server. Prints wall
# time, rows/s and peak RSS of each, and their ratio. Also a no-change incremental run
# of the same table (the watermark at its end).
#
#   N=1000000 ROUNDS=2 bench/etl/run.sh
#   RPT_BIN_B=/tmp/rpt-before N=1000000 ROUNDS=3 bench/etl/run.sh   # an A/B of two builds
#
# Environment: RPT_BIN (default: build ./cmd/rpt), RPT_BIN_B (a second rpt binary,
# e.g. a build of an earlier commit, measured in the same rounds), MYSQL_HOST/MYSQL_PORT/
# MYSQL_USER (default 127.0.0.1, 3306, root without password). Each line is a label,
# wall seconds, rows/s, peak RSS and the 1-minute load average after it; the ratios
# to the dump are of the same round. The databases it creates (rpt_bench_etl_*) are
# dropped at the end. Nothing fails on a time.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${N:-1000000}
ROUNDS=${ROUNDS:-2}
H=${MYSQL_HOST:-127.0.0.1}
P=${MYSQL_PORT:-3306}
U=${MYSQL_USER:-root}
OUT=$(mktemp -d /tmp/rpt-bench-etl.XXXXXX)
my() { mariadb -h"$H" -P"$P" -u"$U" "$@"; }
if [[ -z ${RPT_BIN:-} ]]; then
	RPT_BIN=$OUT/rpt
	go build -o "$RPT_BIN" ./cmd/rpt
fi
SRC=rpt_bench_etl_src WH=rpt_bench_etl_wh DUMP=rpt_bench_etl_dump
cleanup() { my -e "DROP DATABASE IF EXISTS $SRC; DROP DATABASE IF EXISTS $WH; DROP DATABASE IF EXISTS $DUMP"; }
trap cleanup EXIT
cleanup
my -e "CREATE DATABASE $SRC; CREATE DATABASE $WH; CREATE DATABASE $DUMP"

# A balance-like table: keys, an account number, a period, money, a note, a time.
DDL="(id BIGINT NOT NULL PRIMARY KEY, pcn INT NOT NULL, account_no VARCHAR(20) NOT NULL, period INT NOT NULL,
  debit DECIMAL(19,2) NOT NULL, credit DECIMAL(19,2) NOT NULL, note VARCHAR(64) NULL, updated DATETIME(6) NOT NULL)
  ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
my "$SRC" -e "CREATE TABLE big $DDL;
  INSERT INTO big SELECT seq, 123681 + seq % 8, CONCAT(LPAD(seq % 46000, 5, '0'), '-000-0000'), 202401 + seq % 12,
    (seq % 100000) / 100, (seq % 7919) / 100, IF(seq % 10 = 0, NULL, CONCAT('row ', seq, '\ttab')),
    TIMESTAMP('2026-01-01') + INTERVAL seq SECOND
  FROM seq_1_to_$N"
BYTES=$(my -N "$SRC" -e "SELECT data_length FROM information_schema.tables WHERE table_schema = '$SRC' AND table_name = 'big'")

mkdir -p "$OUT/etl"
cat > "$OUT/etl/big.yaml" <<YAML
name: big
source: plex
extract: {table: big}
mode: full
target:
  table: big
  max_shrink: 1
  create: CREATE TABLE big $(echo $DDL)
YAML
cat > "$OUT/etl/big-inc.yaml" <<YAML
name: big-inc
source: plex
extract: {table: big}
mode: incremental
incremental: {column: updated, lookback: 0s, nulls: skip}
target:
  table: big_inc
  key: [id]
  create: CREATE TABLE big_inc $(echo $DDL)
YAML
cat > "$OUT/rpt.yaml" <<YAML
queue: sqlite:$OUT/q.db
sources:
  plex: {driver: mysql, dsn: "mysql://$U@$H:$P/$SRC"}
  warehouse: {driver: mysql, dsn: "mysql://$U@$H:$P/$WH"}
YAML
export RPT_CONFIG=$OUT/rpt.yaml RPT_ETL=$OUT/etl

timed() { # label, command...: prints "label seconds rows/s maxrss load", keeps the seconds in T
	local label=$1; shift
	/usr/bin/time -f "%e %M" -o "$OUT/time" "$@" >"$OUT/$label.out" 2>"$OUT/$label.err" || {
		cat "$OUT/$label.err" >&2; exit 1; }
	read -r T RSS <"$OUT/time"
	printf '%-24s %7.2f s %9.0f rows/s %6.1f MiB RSS  load %s\n' "$label" "$T" "$(echo "$N / $T" | bc -l)" \
		"$(echo "$RSS / 1024" | bc -l)" "$(cut -d' ' -f1 /proc/loadavg)"
}
ratio() { echo "scale=2; $1 / $2" | bc; }
echo "rows $N, source table data $((BYTES / 1048576)) MiB, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$ROUNDS"); do
	my -e "DROP TABLE IF EXISTS $WH.big; DROP TABLE IF EXISTS $DUMP.big"
	timed "rpt-etl-empty-$r" "$RPT_BIN" etl run big; A=$T
	timed "dump-$r" sh -c "mariadb-dump -h$H -P$P -u$U --single-transaction $SRC big | mariadb -h$H -P$P -u$U $DUMP"; D=$T
	line="  round $r: rpt/dump $(ratio "$A" "$D")"
	if [[ -n ${RPT_BIN_B:-} ]]; then
		my -e "DROP TABLE IF EXISTS $WH.big"
		timed "rpt-B-etl-empty-$r" "$RPT_BIN_B" etl run big
		line="$line, B/dump $(ratio "$T" "$D")"
		timed "rpt-B-etl-replace-$r" "$RPT_BIN_B" etl run big
	fi
	timed "rpt-etl-replace-$r" "$RPT_BIN" etl run big
	echo "$line"
done
for t in $WH $DUMP; do
	my -N -e "SELECT '$t', COUNT(*), SUM(debit), SUM(credit), SUM(note IS NULL), MAX(updated) FROM $t.big"
done
timed "rpt-inc-first" "$RPT_BIN" etl run big-inc
timed "rpt-inc-nochange" "$RPT_BIN" etl run big-inc
[[ -z ${RPT_BIN_B:-} ]] || timed "rpt-B-inc-nochange" "$RPT_BIN_B" etl run big-inc
cat "$OUT/rpt-inc-nochange.out"
echo "raw outputs in $OUT"
