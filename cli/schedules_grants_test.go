package cli_test

import (
	"bytes"
	"context"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"rpt/cli"
	"rpt/internal/queue"
	"rpt/internal/queue/mysql"
	"rpt/internal/testenv"
)

// Who may schedule: the README's grants give the submitter SELECT on rpt_schedules and
// UPDATE of the last-run columns only (rpt cron run records each run), so a submitter
// cannot add, change, hold or delete a schedule; the admin can.
func TestSubmitterCannotAddSchedules(t *testing.T) {
	rootDSN := testenv.MariaDB(t)
	ctx := context.Background()
	st, err := mysql.Open(ctx, rootDSN, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(rootDSN)
	subDSN := createRoleUser(t, st.DB(), rootDSN, strings.TrimPrefix(u.Path, "/"), "rpt_submitter")
	work := t.TempDir()
	t.Setenv("HOME", filepath.Join(work, "home"))
	t.Setenv("XDG_DATA_HOME", filepath.Join(work, "data"))
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(work, "config"))
	for _, k := range []string{"RPT_QUEUE", "RPT_CONFIG", "RPT_REPORTS", "RPT_MQTT"} {
		t.Setenv(k, "")
	}
	run := func(dsn string, args ...string) (int, string) {
		var stdout, stderr bytes.Buffer
		code := cli.Main(ctx, append([]string{"rpt", "--queue", dsn, "--retry-for", "0"}, args...), deps(&stdout, &stderr))
		return code, stdout.String() + stderr.String()
	}
	if code, out := run(subDSN, "schedules", "add", "tb", "--cron", "@daily", "--report", "trial-balance"); code == 0 || !strings.Contains(out, "denied") {
		t.Fatalf("add as submitter: exit %d: %s; want refused by the database", code, out)
	}
	if code, out := run(rootDSN, "schedules", "add", "tb", "--cron", "@daily", "--report", "trial-balance"); code != 0 {
		t.Fatalf("add as admin: exit %d: %s", code, out)
	}
	for _, args := range [][]string{{"hold", "tb"}, {"rm", "tb"}, {"update", "tb", "--cron", "@hourly"}} {
		if code, out := run(subDSN, append([]string{"schedules"}, args...)...); code == 0 || !strings.Contains(out, "denied") {
			t.Errorf("%v as submitter: exit %d: %s; want refused", args, code, out)
		}
	}
	if code, out := run(subDSN, "schedules", "list"); code != 0 || !strings.Contains(out, "tb") {
		t.Errorf("list as submitter: exit %d: %s", code, out)
	}
	// The runner (a submitter account) records runs.
	sub, err := mysql.Open(ctx, subDSN, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if err := sub.ScheduleFired(ctx, "tb", time.Now(), 1); err != nil {
		t.Errorf("recording a run as submitter: %v", err)
	}
}
