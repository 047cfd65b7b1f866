package crontab

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"rpt/internal/config"
	"rpt/internal/jobs"
	"rpt/internal/source"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/bad")

// lintNow is a Sunday before the spring 2027 transition.
var lintNow = time.Date(2027, 3, 7, 12, 0, 0, 0, time.UTC)

// needsDef is a report with a required parameter and no default.
const needsDef = `name: needs-plant
source: warehouse
params:
  - {name: plant, type: int}
  - {name: day, type: date, default: yesterday}
sql: SELECT :plant AS plant, :day AS day
`

func lintOptions(t testing.TB) LintOptions {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "needs.yaml"), []byte(needsDef), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Reports = []string{dir}
	cfg.Sources = map[string]source.Config{
		"warehouse": {Driver: "mysql", DSN: "mysql://u@127.0.0.1:1/w"},
		"plex":      {Driver: "mysql", DSN: "mysql://u@127.0.0.1:1/p"},
	}
	cfg.SMTP = &config.SMTP{Host: "smtp.example.com", Port: 587, TLS: "starttls", From: "reports@example.com"}
	cfg.Deliver.EmailDomains = []string{"example.com"}
	svc := &jobs.Service{Config: cfg, Loc: time.UTC}
	return LintOptions{
		Service:      func(string) (*jobs.Service, error) { return svc, nil },
		Now:          lintNow,
		IsExecutable: func(p string) bool { return p == "/opt/rpt/bin/rpt" },
	}
}

func lintText(t testing.TB, src string) string {
	t.Helper()
	var lines []string
	for _, p := range LintFile("c", []byte(src), time.UTC, lintOptions(t)) {
		lines = append(lines, p.String())
	}
	return strings.Join(lines, "\n")
}

func TestLintRptLines(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"clean", "CRON_TZ=America/Detroit\nRPT_CONFIG=/etc/rpt/rpt.yaml\n10 19 * * 1 /usr/local/bin/rpt submit trial-balance --once-per 1h\n", ""},
		{"clean with prefix assignment and --config",
			"20 7 * * * RPT_X=1 /usr/local/bin/rpt --config=/etc/rpt/rpt.yaml submit daily-production --once-per=1h >/dev/null 2>&1\n", ""},
		{"dedupe also counts", "RPT_CONFIG=/etc/rpt/rpt.yaml\n20 7 * * * /usr/local/bin/rpt submit daily-production --dedupe dp\n", ""},
		{"rpt not on PATH", "RPT_CONFIG=/etc/rpt/rpt.yaml\n20 7 * * * rpt submit daily-production --once-per 1h\n",
			"c:2:12: warning: command: rpt is not on cron's PATH (/usr/bin:/bin): give its absolute path (/usr/local/bin/rpt) or a PATH= line with its folder"},
		{"PATH line that has it", "PATH=/usr/bin:/opt/rpt/bin\nRPT_CONFIG=/etc/rpt/rpt.yaml\n20 7 * * * rpt submit daily-production --once-per 1h\n", ""},
		{"PATH line without it", "PATH=/usr/bin:/bin\nRPT_CONFIG=/etc/rpt/rpt.yaml\n20 7 * * * rpt submit daily-production --once-per 1h\n",
			"c:3:12: warning: command: rpt is in no folder of PATH=/usr/bin:/bin on this host: give its absolute path"},
		{"no config", "20 7 * * * /usr/local/bin/rpt submit daily-production --once-per 1h\n",
			"c:1:12: warning: command: no --config or RPT_CONFIG: cron runs commands in HOME, where ./rpt.yaml is not found, so rpt runs with its defaults (add RPT_CONFIG=/etc/rpt/rpt.yaml above this line)"},
		{"relative config", "RPT_CONFIG=rpt.yaml\n20 7 * * * /usr/local/bin/rpt submit daily-production --once-per 1h\n",
			"c:2:12: warning: RPT_CONFIG: rpt.yaml: a relative path; cron runs commands in HOME (give an absolute path)"},
		{"no once-per", "RPT_CONFIG=/etc/rpt/rpt.yaml\n20 7 * * * /usr/local/bin/rpt submit daily-production\n",
			"c:2:38: warning: rpt submit: no --once-per or --dedupe: each node that runs this file queues its own job (add --once-per 1h)"},
		{"once-per longer than the gap", "RPT_CONFIG=/etc/rpt/rpt.yaml\n10 3,7,11,15,19,23 * * * /usr/local/bin/rpt submit trial-balance --once-per 24h\n",
			"c:2:77: warning: --once-per: 24h is longer than the time between runs (Sun 15:10 and Sun 19:10 UTC fall in one bucket): the second is not queued"},
		{"required parameter", "RPT_CONFIG=/etc/rpt/rpt.yaml\n0 6 * * * /usr/local/bin/rpt submit needs-plant --once-per 1h\n",
			`c:2:37: error: rpt submit: param "plant" (int): required (give -p plant=VALUE)`},
		{"bad parameter points at its -p", "RPT_CONFIG=/etc/rpt/rpt.yaml\n0 6 * * * /usr/local/bin/rpt submit needs-plant -p day=yesterday -p plant=x --once-per 1h\n",
			`c:2:69: error: rpt submit: param "plant" (int): invalid value "x": want an integer`},
		{"unescaped percent ends the command", "RPT_CONFIG=/etc/rpt/rpt.yaml\n20 7 * * * /usr/local/bin/rpt submit daily-production --once-per 1h >>/var/log/rpt-$(date +%F).log\n",
			"c:2:84: error: command: /bin/sh cannot parse it: reached EOF without matching `$(` with `)` (the unescaped % at column 92 ended the command: write \\% for a literal %)"},
		{"escaped percent", "RPT_CONFIG=/etc/rpt/rpt.yaml\n20 7 * * * /usr/local/bin/rpt submit daily-production --once-per 1h >>/var/log/rpt-$(date +\\%F).log\n", ""},
		{"percent as stdin", "0 1 * * * /usr/bin/mail -s hi ops%body\n",
			"c:1:34: warning: command: unescaped %: cron ends the command here and gives the rest to its stdin (write \\% for a literal %, as in date +\\%F)"},
		{"mailto", "MAILTO=ops@example.com\n",
			`c:1:8: warning: MAILTO: cron mails each line's output to ops@example.com from every node that runs this file (rpt submit prints the job id): one mail per node per run; set MAILTO="" and let rpt deliver results`},
		{"no expansion in env lines", "PATH=$PATH:/opt/rpt/bin\n",
			"c:1:6: warning: PATH: cron does not expand $VAR in NAME=value lines: PATH is set to the text as written"},
		{"never runs", "0 0 30 2 * true\n", "c:1:1: warning: schedule: 0 0 30 2 * never runs: no date has this day-of-month in these months"},
		{"parameter sets from a file are checked when the line runs", "RPT_CONFIG=/etc/rpt/rpt.yaml\n0 6 * * * /usr/local/bin/rpt submit needs-plant --from /etc/rpt/plants.csv --once-per 1h\n",
			`c:2:56: warning: --from: the parameter sets in "/etc/rpt/plants.csv" are checked when the line runs, not by lint (rpt submit --from checks every set before queuing any)`},
		{"other commands are left alone", "*/5 * * * * /usr/bin/find /tmp -mtime +1 -delete\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := lintText(t, tc.src); got != tc.want {
				t.Errorf("\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

// Every file of testdata/bad has its problems, with line and column, in a golden file
// (go test ./crontab -run Catalogue -update rewrites them).
func TestBadCatalogue(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.crontab")
	if err != nil || len(files) < 30 {
		t.Fatalf("catalogue: %d files, %v", len(files), err)
	}
	for _, path := range files {
		data, err := ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		errs := 0
		for _, p := range LintFile(filepath.Base(path), data, time.UTC, lintOptions(t)) {
			lines = append(lines, p.String())
			if p.Severity == SevError {
				errs++
			}
		}
		if errs == 0 {
			t.Errorf("%s: no error found", path)
		}
		got := strings.Join(lines, "\n") + "\n"
		golden := strings.TrimSuffix(path, ".crontab") + ".golden"
		if *update {
			if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		if got != string(want) {
			t.Errorf("%s:\n got %s\nwant %s", path, got, want)
		}
	}
}

// A --deliver target lint (and so rpt submit) would refuse is an error at its column.
func TestLintDeliver(t *testing.T) {
	src := "RPT_CONFIG=/etc/rpt/rpt.yaml\n" +
		"10 19 * * 1 /opt/rpt/bin/rpt submit trial-balance --once-per 1h --deliver mailto:thief@evil.example.net\n" +
		"10 19 * * 1 /opt/rpt/bin/rpt submit trial-balance --once-per 1h --deliver mailto:nope\n" +
		"10 19 * * 1 /opt/rpt/bin/rpt submit trial-balance --once-per 1h --deliver mailto:accounting@example.com\n"
	got := lintText(t, src)
	want := "c:2:75: error: rpt submit: --deliver: thief@evil.example.net: domain evil.example.net is not allowed (deliver.email_domains: example.com)\n" +
		"c:3:75: error: rpt submit: --deliver: \"nope\": not an e-mail address (want name@example.com)"
	if got != want {
		t.Fatalf("lint:\n%s\nwant:\n%s", got, want)
	}
}
