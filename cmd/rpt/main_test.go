package main

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/rogpeppe/go-internal/txtar"

	"rpt/internal/dsn"
)

var update = flag.Bool("update", false, "rewrite the golden files of cmp in scripts")

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){"rpt": main})
}

// TestScripts runs the CLI end to end as users do: the real rpt binary (this test
// binary, re-executed), each script in its own HOME so the embedded default queue and
// demo data are its own. Scripts needing MariaDB use $RPT_TEST_MYSQL_DSN and skip
// without it ([!env:RPT_TEST_MYSQL_DSN] skip).
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		UpdateScripts:       *update,
		RequireExplicitExec: false,
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exitcode":   cmdExitCode,
			"stdout2env": cmdStdoutToEnv,
			"normevents": cmdNormEvents,
		},
		Condition: func(cond string) (bool, error) {
			switch cond {
			case "mysql":
				return os.Getenv("RPT_TEST_MYSQL_DSN") != "", nil
			case "mqtt":
				return os.Getenv("RPT_TEST_MQTT") != "", nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Setup: func(env *testscript.Env) error {
			home := env.WorkDir
			env.Setenv("HOME", home)
			env.Setenv("XDG_DATA_HOME", filepath.Join(home, ".local", "share"))
			env.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
			env.Setenv("TZ", "UTC")
			if base := os.Getenv("RPT_TEST_MYSQL_DSN"); base != "" {
				db, err := createDatabase(base)
				if err != nil {
					return err
				}
				env.Setenv("MYSQL_QUEUE", db.dsn)
				env.Defer(db.drop)
			}
			// Each script its own topic prefix on the shared broker.
			var p [4]byte
			rand.Read(p[:])
			env.Setenv("RPT_MQTT_PREFIX", "rpt-test-"+hex.EncodeToString(p[:]))
			for _, k := range []string{"RPT_TEST_MYSQL_DSN", "RPT_TEST_REQUIRE_MYSQL", "RPT_TEST_MQTT"} {
				if v := os.Getenv(k); v != "" {
					env.Setenv(k, v)
				}
			}
			return nil
		},
	})
}

// cmdExitCode runs a command and checks its exit code: `exitcode 2 rpt submit nosuch`.
// Its stdout and stderr are kept for the stdout/stderr commands that follow.
func cmdExitCode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exitcode CODE command [args...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exitcode: %q is not a number", args[0])
	}
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("exitcode: %v", err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited %d, want %d", strings.Join(args[1:], " "), got, want)
	}
}

// cmdStdoutToEnv sets an environment variable to the last command's trimmed stdout:
// `exec rpt submit trial-balance` then `stdout2env ID`.
func cmdStdoutToEnv(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: stdout2env NAME")
	}
	ts.Setenv(args[0], strings.TrimSpace(ts.ReadFile("stdout")))
}

type testDatabase struct {
	dsn  string
	drop func()
}

// createDatabase makes a database of its own for one script on the server of base
// (mysql://root@127.0.0.1:3306/) and returns its DSN and a func that drops it.
func createDatabase(base string) (*testDatabase, error) {
	cfg, err := dsn.MySQL(base)
	if err != nil {
		return nil, err
	}
	cfg.DBName = ""
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return nil, err
	}
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	name := "rpt_cli_" + hex.EncodeToString(b[:])
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		db.Close()
		return nil, fmt.Errorf("create test database: %w", err)
	}
	u := strings.TrimSuffix(base, "/")
	if i := strings.LastIndex(u, "/"); i > len("mysql://") {
		u = u[:i]
	}
	return &testDatabase{dsn: u + "/" + name, drop: func() {
		db.Exec("DROP DATABASE IF EXISTS " + name)
		db.Close()
	}}, nil
}

// cmdNormEvents rewrites the last stdout, JSON events one per line (rpt watch in a
// pipe), into a stable form for a golden file: progress events (their number depends on
// timing) are dropped, seq becomes its rank, and at becomes "AT".
func cmdNormEvents(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: normevents")
	}
	rank := 0
	for _, line := range strings.Split(strings.TrimSpace(ts.ReadFile("stdout")), "\n") {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			ts.Fatalf("normevents: %q is not a JSON event: %v", line, err)
		}
		if ev["event"] == "progress" {
			continue
		}
		rank++
		ev["seq"], ev["at"] = rank, "AT"
		// Who submitted, cancelled or retried is the OS user@host of the test machine.
		if by, ok := ev["by"].(string); ok {
			if by == "" {
				ts.Fatalf("normevents: %q names an empty actor", line)
			}
			ev["by"] = "BY"
		}
		b, err := json.Marshal(ev)
		if err != nil {
			ts.Fatalf("normevents: %v", err)
		}
		fmt.Fprintf(ts.Stdout(), "%s\n", b)
	}
}

// TestREADMEScripts: the shell lines the scripts run as the README's examples
// (readme-*.sh files in testdata/script) are in README.md exactly, so a test runs what
// a reader copies.
func TestREADMEScripts(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	scripts, err := filepath.Glob("testdata/script/*.txtar")
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, s := range scripts {
		a, err := txtar.ParseFile(s)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range a.Files {
			if !strings.HasPrefix(f.Name, "readme-") {
				continue
			}
			for _, line := range strings.Split(strings.TrimSpace(string(f.Data)), "\n") {
				found++
				if !strings.Contains(string(readme), "\n"+line+"\n") {
					t.Errorf("%s: %s: line not in README.md: %s", filepath.Base(s), f.Name, line)
				}
			}
		}
	}
	if found == 0 {
		t.Error("no readme-*.sh lines found in testdata/script")
	}
}

// TestREADMEFirstHour: the README's "### The first hour" block is the script that
// firsthour.txtar runs, character for character, so the README cannot drift from what
// the test walks.
func TestREADMEFirstHour(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), "\n### The first hour\n")
	if !ok {
		t.Fatal(`README.md has no "### The first hour" section`)
	}
	_, after, ok = strings.Cut(after, "\n```sh\n")
	block, _, ok2 := strings.Cut(after, "\n```\n")
	if !ok || !ok2 {
		t.Fatal("README.md: no ```sh block under \"### The first hour\"")
	}
	a, err := txtar.ParseFile("testdata/script/firsthour.txtar")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range a.Files {
		if f.Name == "readme-firsthour.sh" {
			if got := strings.TrimSpace(string(f.Data)); got != strings.TrimSpace(block) {
				t.Errorf("firsthour.txtar's readme-firsthour.sh differs from README.md's first-hour block:\n--- README\n%s\n--- script\n%s", block, got)
			}
			return
		}
	}
	t.Error("firsthour.txtar has no readme-firsthour.sh")
}

// TestREADMEInstall runs the README's set-up line `go install ./cmd/rpt` as written
// (into a GOBIN of its own) from the module root, and the binary it installs answers
// `rpt version`: the first step of the first hour works. A build with a warm cache
// takes seconds; -short skips it.
func TestREADMEInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: go install links a binary")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var line string
	for _, l := range strings.Split(string(readme), "\n") {
		if strings.HasPrefix(l, "go install ") {
			line = l
			break
		}
	}
	fields := strings.Fields(strings.SplitN(line, "#", 2)[0])
	if len(fields) != 3 || fields[2] != "./cmd/rpt" {
		t.Fatalf("README.md: want a set-up line `go install ./cmd/rpt`, found %q", line)
	}
	gobin := t.TempDir()
	cmd := exec.Command("go", fields[1:]...)
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "GOBIN="+gobin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", line, err, out)
	}
	out, err := exec.Command(filepath.Join(gobin, "rpt"), "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "rpt ") {
		t.Fatalf("installed rpt version: %v: %q", err, out)
	}
}
