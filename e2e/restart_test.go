package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"rpt/internal/dsn"
	"rpt/internal/queue"
	"rpt/internal/results"
	"rpt/internal/testenv"
)

// privateServer is a MariaDB server of one test's own, which the test may kill and
// start again: the shared server must never be restarted.
type privateServer struct {
	dir  string
	port int
	cmd  *exec.Cmd
	done chan struct{}
}

// lookTool finds a MariaDB program on PATH or in the sbin folders it is installed in.
func lookTool(name string) (string, bool) {
	if p, err := exec.LookPath(name); err == nil {
		return p, true
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/usr/local/mysql/bin"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p, true
		}
	}
	return "", false
}

// startPrivateMariaDB installs a data directory and starts mariadbd on a free port,
// without grant tables (root with no password, from anywhere). The test skips when the
// MariaDB server programs are not installed.
func startPrivateMariaDB(t *testing.T) *privateServer {
	t.Helper()
	install, ok1 := lookTool("mariadb-install-db")
	if _, ok2 := lookTool("mariadbd"); !ok1 || !ok2 {
		t.Skip("mariadbd or mariadb-install-db not installed; skipping the restart test")
	}
	// Short path: the server's unix socket path must fit in 108 bytes.
	dir, err := os.MkdirTemp("", "rpt-mdb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// Its own tmpdir (for the bootstrap server too): at start mariadbd deletes every #sql*
	// file in its tmpdir, which in /tmp would be the shared server's temporary tables.
	if err := os.Mkdir(filepath.Join(dir, "tmp"), 0o700); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(install, "--no-defaults", "--datadir="+filepath.Join(dir, "data"), "--user=root",
		"--auth-root-authentication-method=normal", "--skip-test-db",
		"--tmpdir="+filepath.Join(dir, "tmp")).CombinedOutput()
	if err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, tail(string(out), 2000))
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &privateServer{dir: dir, port: l.Addr().(*net.TCPAddr).Port}
	l.Close()
	s.start(t)
	t.Cleanup(func() {
		s.kill(t)
		if t.Failed() {
			// Only its warnings and errors: the notes of every start would push the
			// test's own failure messages out of a CI log's excerpt.
			b, _ := os.ReadFile(filepath.Join(dir, "err.log"))
			t.Logf("private mariadbd error log, warnings and errors (tail):\n%s", tail(withoutNotes(string(b)), 1500))
		}
	})
	return s
}

// withoutNotes drops a MariaDB error log's [Note] lines.
func withoutNotes(log string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(log, "\n") {
		if !strings.Contains(line, "[Note]") {
			b.WriteString(line)
		}
	}
	return b.String()
}

// start runs mariadbd on the data directory and waits until it answers.
func (s *privateServer) start(t *testing.T) {
	t.Helper()
	bin, _ := lookTool("mariadbd")
	s.cmd = exec.Command(bin, "--no-defaults", "--datadir="+filepath.Join(s.dir, "data"),
		"--socket="+filepath.Join(s.dir, "s.sock"), "--port="+strconv.Itoa(s.port), "--bind-address=127.0.0.1",
		"--user=root", "--skip-grant-tables", "--skip-log-bin", "--innodb-buffer-pool-size=32M",
		"--max-connections=300", "--pid-file="+filepath.Join(s.dir, "mariadbd.pid"),
		"--tmpdir="+filepath.Join(s.dir, "tmp"),
		"--log-error="+filepath.Join(s.dir, "err.log"))
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start mariadbd: %v", err)
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		_ = cmd.Wait()
		close(done)
	}(s.cmd, s.done)
	waitFor(t, 60*time.Second, "private mariadbd accepting connections", func() (bool, error) {
		select {
		case <-s.done:
			b, _ := os.ReadFile(filepath.Join(s.dir, "err.log"))
			t.Fatalf("mariadbd exited at start:\n%s", tail(string(b), 3000))
		default:
		}
		db, err := s.open("")
		if err != nil {
			return false, err
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return db.PingContext(ctx) == nil, nil
	})
}

// kill ends mariadbd with SIGKILL, as a crash or an OOM kill would.
func (s *privateServer) kill(t *testing.T) {
	select {
	case <-s.done:
		return
	default:
	}
	if err := s.cmd.Process.Kill(); err != nil {
		t.Errorf("kill mariadbd: %v", err)
	}
	<-s.done
}

// signal sends sig to mariadbd (SIGSTOP and SIGCONT freeze and resume it).
func (s *privateServer) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v to mariadbd: %v", sig, err)
	}
}

// createDB creates database name on the server (utf8mb4, binary collation, as the
// queue wants it).
func (s *privateServer) createDB(t *testing.T, name string) {
	t.Helper()
	admin, err := s.open("")
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE DATABASE " + name + " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
}

func (s *privateServer) dsn(db string) string {
	return fmt.Sprintf("mysql://root@127.0.0.1:%d/%s", s.port, db)
}

func (s *privateServer) open(db string) (*sql.DB, error) {
	cfg, err := dsn.MySQL(s.dsn(db))
	if err != nil {
		return nil, err
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(conn), nil
}

// The queue database is killed (SIGKILL) while agents run jobs and started again a few
// seconds later: every job ends succeeded, exactly one attempt of each succeeds, no two
// attempts of one job overlap in the queue's events, and (the source being another
// server, which stays up) no attempt's query ran on the source while another attempt of
// the same job was still running there.
func TestQueueRestartRunsNoJobTwice(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		down time.Duration // between the kill and the start of mariadbd
	}{
		// Longer than the lease: every agent self-fences and releases its jobs.
		{"down 4s", 4 * time.Second},
		// Started again at once: the outage is the crash recovery, about as long as the
		// self-fencing margin, so some heartbeats resume in time and some do not.
		{"restarted at once", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			testQueueRestart(t, tt.down)
		})
	}
}

func testQueueRestart(t *testing.T, down time.Duration) {
	srcDSN := testenv.MariaDB(t) // also the skip rule: RPT_TEST_MYSQL_DSN
	// The failures again, after every other cleanup's logs (cleanups run last in, first
	// out), so a CI log's excerpt ends with them rather than with server logs.
	var failures []string
	errorf := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		failures = append(failures, msg)
		t.Error(msg)
	}
	t.Cleanup(func() {
		if len(failures) > 0 {
			t.Logf("failures of this test, again:\n  %s", strings.Join(failures, "\n  "))
		}
	})
	began := time.Now()
	srv, r, srcDB := privateQueueRig(t, srcDSN)

	checkDetector(t, srcDSN, guardSQL("e2e-guard-"+srcDB+"-probe-end"))

	const agents, jobs = 3, 12
	var as []*agent
	for i := range agents {
		as = append(as, r.startAgent(fmt.Sprintf("restart-%d", i), 2))
	}
	// Generous deadlines, counted from here: on a loaded machine starting the private
	// server alone can take most of a minute, and it is no part of what is tested.
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var ids []int64
	for i := range jobs {
		def := r.define(fmt.Sprintf("name: guarded\nsource: db\nparams:\n  - {name: s, type: decimal}\nmax_attempts: 8\nsql: %q\n",
			guardSQL(fmt.Sprintf("e2e-guard-%s-%d-end", srcDB, i))))
		id, err := r.enqueue(ctx, def, map[string]string{"s": "3"})
		if err != nil {
			t.Fatalf("enqueue %d: %v", i, err)
		}
		ids = append(ids, id)
	}
	waitFor(t, 20*time.Second, "4 jobs running", func() (bool, error) {
		var n int
		err := r.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM rpt_jobs WHERE status = 'running'").Scan(&n)
		return n >= 4, err
	})
	time.Sleep(time.Second) // mid-query
	srv.kill(t)
	killed := time.Now()
	time.Sleep(down)
	srv.start(t)
	restarted := time.Since(killed)

	all := r.waitFinished(ctx, 2*time.Minute, "all jobs finished after the restart")
	evs, err := r.events(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	byJob := map[int64][]eventRow{}
	counts := map[string]int{}
	for _, e := range evs {
		byJob[e.JobID] = append(byJob[e.JobID], e)
		counts[e.Event]++
	}
	if dump := os.Getenv("RPT_E2E_DUMP"); dump != "" {
		var b strings.Builder
		for _, e := range evs {
			fmt.Fprintf(&b, "%d job=%d %s %s attempt=%d agent=%s rows=%d at=%s\n", e.Seq, e.JobID, e.Event, e.Status, e.Attempt, e.Agent, e.Rows, e.At.Format("15:04:05.000000"))
		}
		fmt.Fprintf(&b, "killed at %s\n", killed.UTC().Format("15:04:05.000000"))
		_ = os.WriteFile(filepath.Join(dump, strings.ReplaceAll(t.Name(), "/", "_")+"-events.txt"), []byte(b.String()), 0o644)
	}
	attemptsTotal := 0
	for _, j := range all {
		if j.Status != string(queue.StatusSucceeded) {
			errorf("job %d ended %s (attempt %d, failures %d), want succeeded", j.ID, j.Status, j.Attempt, j.Failures)
			continue
		}
		succeeded := 0
		for _, e := range byJob[j.ID] {
			if e.Event == queue.EventSucceeded {
				succeeded++
				if e.Attempt != j.ResultAttempt {
					errorf("job %d: succeeded event at attempt %d, result attempt %d", j.ID, e.Attempt, j.ResultAttempt)
				}
			}
		}
		if succeeded != 1 {
			errorf("job %d: %d succeeded events, want 1", j.ID, succeeded)
		}
		iv := attempts(byJob[j.ID])
		attemptsTotal += len(iv)
		if n := maxOverlap(iv); n > 1 {
			errorf("job %d: %d attempts overlapped in the events: %+v", j.ID, n, iv)
		}
		for _, i := range iv {
			if i.Ended == "" {
				errorf("job %d: attempt %d by %s never ended in the events", j.ID, i.Attempt, i.Agent)
			}
		}
		others, err := resultOthers(ctx, r, j)
		if err != nil {
			errorf("job %d: read result: %v", j.ID, err)
		} else if others != 0 {
			errorf("job %d: attempt %d started its query while %d other queries of the job ran on the source", j.ID, j.ResultAttempt, others)
		}
	}
	if len(all) != jobs {
		errorf("%d jobs, want %d", len(all), jobs)
	}
	selfFenced := 0
	for _, a := range as {
		if a.exited() {
			errorf("agent %s exited during the queue outage: %v", a.name, a.err)
		}
		selfFenced += strings.Count(a.logText(), "self-fencing")
	}
	t.Logf("queue down for %.1fs; %d jobs, %d attempts; events: %v; self-fenced attempts logged: %d; test took %.1fs",
		restarted.Seconds(), len(all), attemptsTotal, counts, selfFenced, time.Since(began).Seconds())
}

// resultOthers reads a job's result (its result attempt) and returns its "others" column.
func resultOthers(ctx context.Context, r *rig, j jobRow) (int64, error) {
	rows, err := results.Open(ctx, results.InQueue(r.store), results.Ref{JobID: j.ID, Attempt: j.ResultAttempt})
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var others int64 = -1
	n := 0
	for rows.Next() {
		n++
		v := rows.Values()[1]
		switch x := v.(type) {
		case int64:
			others = x
		case string:
			others, err = strconv.ParseInt(x, 10, 64)
			if err != nil {
				return 0, err
			}
		default:
			return 0, fmt.Errorf("others is %T %v", v, v)
		}
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if n != 1 {
		return 0, fmt.Errorf("%d rows, want 1", n)
	}
	return others, nil
}

// checkDetector proves the overlap detector can fire: two copies of a marked query
// run at once on the source, through prepared statements as the source driver runs
// them, and the second sees the first.
func checkDetector(t *testing.T, srcDSN, query string) {
	t.Helper()
	cfg, err := dsn.MySQL(srcDSN)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	q := strings.Replace(query, ":s", "?", 1)
	long := make(chan error, 1)
	go func() {
		var m string
		var o, s int64
		long <- db.QueryRow(q, "2").Scan(&m, &o, &s)
	}()
	for {
		var m string
		var others, slept int64
		if err := db.QueryRow(q, "0").Scan(&m, &others, &slept); err != nil {
			t.Fatalf("detector probe: %v", err)
		}
		if others == 1 {
			break
		}
		select {
		case err := <-long:
			t.Fatalf("detector probe never saw the other marked query while it ran (it ended: %v): "+
				"the overlap check would not notice anything", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err := <-long; err != nil {
		t.Fatalf("detector probe: long query: %v", err)
	}
}

// privateQueueRig starts a private MariaDB the test may kill and restart, with the
// queue database "rpt" on it, and a rig whose report source is srcDSN on the shared
// server; srcDB is the source database's name.
func privateQueueRig(t *testing.T, srcDSN string) (srv *privateServer, r *rig, srcDB string) {
	t.Helper()
	srv = startPrivateMariaDB(t)
	srv.createDB(t, "rpt")
	r = newRig(t, srv.dsn("rpt"), srcDSN)
	srcURL, err := url.Parse(srcDSN)
	if err != nil {
		t.Fatal(err)
	}
	return srv, r, strings.TrimPrefix(srcURL.Path, "/")
}

// guardSQL is a job's SQL that names its own marker and counts the other queries
// running on the source server with that marker: a count above 0 in a result means two
// attempts of the job ran their queries at the same time. The marker is literal SQL,
// not a parameter, so the process list shows it however the driver binds parameters.
func guardSQL(marker string) string {
	return fmt.Sprintf("SELECT '%s' AS marker, (SELECT COUNT(*) FROM information_schema.PROCESSLIST "+
		"WHERE INFO LIKE '%%%s%%' AND ID <> CONNECTION_ID()) AS others, SLEEP(:s) AS slept", marker, marker)
}
