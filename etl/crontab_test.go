package etl_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"rpt/crontab"
	"rpt/etl"
)

// TestRefreshCrontab: the example ETL crontab has the seed's refresh schedule, lints
// clean, and names only shipped ETLs, which together cover every table the reports
// read.
func TestRefreshCrontab(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../crontab/examples/etl.crontab")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range crontab.LintFile("etl.crontab", data, time.UTC, crontab.LintOptions{}) {
		t.Errorf("lint: %s", p)
	}
	f, err := crontab.Parse("etl.crontab", data)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Entries) != 1 || f.Entries[0].Spec != "10 3,7,11,15,19,23 * * *" {
		t.Fatalf("entries %+v, want one line at 10 3,7,11,15,19,23 * * *", f.Entries)
	}
	cat, err := etl.LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	words := f.Entries[0].Words[0]
	if len(words) < 4 || words[1].Text != "etl" || words[2].Text != "run" {
		t.Fatalf("command %q, want rpt etl run", f.Entries[0].Command)
	}
	var names []string
	for _, w := range words[3:] {
		names = append(names, w.Text)
	}
	order, err := cat.Order(names)
	if err != nil {
		t.Fatal(err)
	}
	targets := map[string]bool{}
	for _, d := range order {
		targets[d.Target] = true
	}
	for _, table := range []string{"accounting_account", "accounting_period", "accounting_balance", "part_v_workcenter_log_e",
		"part_v_workcenter_e", "part_v_workcenter_status_e", "daily_shift_report"} {
		if !targets[table] {
			t.Errorf("the refresh line (%s) does not fill %s", strings.Join(names, " "), table)
		}
	}
}
