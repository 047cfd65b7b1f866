// Package e2e holds multi-process tests of rpt: real `rpt agent` processes (the binary
// built from cmd/rpt) claiming from one MariaDB queue, killed with SIGKILL, paused with
// SIGSTOP, and run across a restart of the queue database. The evidence is the queue's
// own record (rpt_jobs, rpt_job_events, rpt_results) and, where two attempts of a job
// could overlap at the source, the source server's process list. The tests need
// RPT_TEST_MYSQL_DSN and skip without it; the package has no code besides its tests.
// With -race the rpt binary is built with -race too, and a data race an agent reports
// fails the test. RPT_E2E_DUMP=DIR keeps every agent's log (and the restart test's
// events) in DIR for a closer look.
package e2e
