// Package bench holds rpt's benchmarks of the queue and of result streaming; it has no
// code of its own besides its tests. Run them with bench/run.sh (which also measures the
// rpt binary as processes and prints the markdown tables of BENCHMARKS.md) or with
//
//	RPT_TEST_MYSQL_DSN=mysql://root@127.0.0.1:3306/ go test -run '^$' -bench . ./bench/...
//
// Every MariaDB benchmark creates its own database and drops it at the end; they skip
// when RPT_TEST_MYSQL_DSN is unset. The heavy ones (a million finished jobs, a
// five-million-row result) run only with RPT_BENCH_BIG=1. Nothing here asserts a time:
// the machine they run on is shared, so compare figures of one run with each other.
package bench
