package cli_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// rpt submit --from: one job per parameter set of a CSV or JSON-lines file, all or
// nothing; a bad set is refused naming its line and field and queues nothing; once
// keys are exact within one file and across submits.
func TestSubmitFrom(t *testing.T) {
	work := t.TempDir()
	isolateEnv(t, work)
	cfg := filepath.Join(work, "rpt.yaml")
	writeFile(t, cfg, []byte("reports: ["+filepath.Join(work, "defs")+"]\n"+
		"sources:\n  demo: {driver: sqlite, dsn: \"sqlite:"+filepath.Join(work, "demo.db")+"\"}\n"))
	writeFile(t, filepath.Join(work, "defs", "plant.yaml"), []byte(`name: plant
source: demo
params:
  - {name: pcn, type: int}
  - {name: label, type: string, default: none}
sql: SELECT :pcn AS pcn, :label AS label
`))
	run := func(want int, args ...string) (string, string) {
		t.Helper()
		code, stdout, stderr := runCLI(t, context.Background(), append([]string{"--config", cfg}, args...))
		if code != want {
			t.Fatalf("rpt %s: exit %d, want %d: %s", strings.Join(args, " "), code, want, stderr)
		}
		return strings.TrimSpace(stdout), stderr
	}
	params := func(id string) map[string]any {
		t.Helper()
		out, _ := run(0, "jobs", "show", id, "-o", "json")
		var v struct{ Params map[string]any }
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatal(err)
		}
		return v.Params
	}
	count := func() int {
		t.Helper()
		out, _ := run(0, "jobs", "list", "-o", "tsv", "--limit", "1000")
		n := 0
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "ID") || strings.TrimSpace(l) == "" {
				continue
			}
			n++
		}
		return n
	}

	csvFile := filepath.Join(work, "plants.csv")
	writeFile(t, csvFile, []byte("pcn,label\n300758,Albion\n123681,\n\"310507\",\"Quoted, with comma\"\n"))
	out, _ := run(0, "submit", "plant", "--from", csvFile)
	ids := strings.Fields(out)
	if len(ids) != 3 {
		t.Fatalf("--from csv printed %q, want 3 ids", out)
	}
	want := []map[string]any{{"pcn": float64(300758), "label": "Albion"}, {"pcn": float64(123681), "label": "none"},
		{"pcn": float64(310507), "label": "Quoted, with comma"}}
	for i, id := range ids {
		if p := params(id); p["pcn"] != want[i]["pcn"] || p["label"] != want[i]["label"] {
			t.Errorf("job %s params %v, want %v", id, p, want[i])
		}
	}

	// JSON lines with -p common to all; --once-per makes the duplicate line the same job.
	jl := filepath.Join(work, "plants.jsonl")
	writeFile(t, jl, []byte("{\"pcn\": 1}\n\n{\"pcn\": \"2\"}\n{\"pcn\": 1}\n"))
	out, stderr := run(0, "submit", "plant", "-p", "label=x", "--once-per", "1h", "--from", jl)
	ids = strings.Fields(out)
	if len(ids) != 3 || ids[0] != ids[2] || ids[0] == ids[1] || !strings.Contains(stderr, "1 of 3 jobs already existed") {
		t.Fatalf("--from jsonl with a duplicate: ids %v, stderr %q", ids, stderr)
	}
	if p := params(ids[1]); p["pcn"] != float64(2) || p["label"] != "x" {
		t.Errorf("job %s params %v", ids[1], p)
	}
	// The same file again: every once key is taken already.
	again, stderr := run(0, "submit", "plant", "-p", "label=x", "--once-per", "1h", "--from", jl)
	if strings.Join(strings.Fields(again), " ") != strings.Join(ids, " ") || !strings.Contains(stderr, "3 of 3 jobs already existed") {
		t.Errorf("second submit of the same file: %q (%q), want %v", again, stderr, ids)
	}

	before := count()
	for _, tc := range []struct {
		name, file, body string
		args             []string
		code             int
		msg              []string
	}{
		{"bad value", "bad.csv", "pcn\n1\n2\nabc\n", nil, 2, []string{"--from line 4", "pcn", "nothing was queued"}},
		{"unknown field", "unknown.jsonl", "{\"pcn\": 1}\n{\"pcn\": 2, \"plnt\": 3}\n", nil, 2, []string{"--from line 2", "plnt"}},
		{"object value", "obj.jsonl", "{\"pcn\": {\"a\": 1}}\n", nil, 2, []string{"line 1", `field "pcn"`, "object"}},
		{"not json", "broken.jsonl", "{\"pcn\": 1}\n{pcn: 2}\n", nil, 2, []string{"line 2", "not a JSON object"}},
		{"short row", "short.csv", "pcn,label\n1,a\n2\n", nil, 2, []string{"line 3", "wrong number of fields"}},
		{"also -p", "dup.csv", "pcn\n1\n", []string{"-p", "pcn=5"}, 2, []string{"line 2", `"pcn"`, "also given with -p"}},
		{"empty", "empty.csv", "pcn\n", nil, 2, []string{"no parameter sets"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(work, tc.file)
			writeFile(t, path, []byte(tc.body))
			_, stderr := run(tc.code, append(append([]string{"submit", "plant"}, tc.args...), "--from", path)...)
			for _, m := range tc.msg {
				if !strings.Contains(stderr, m) {
					t.Errorf("stderr %q does not say %q", stderr, m)
				}
			}
		})
	}
	if after := count(); after != before {
		t.Errorf("refused files queued %d jobs", after-before)
	}
	if _, stderr := run(2, "submit", "plant", "--from", csvFile, "--wait"); !strings.Contains(stderr, "--wait") {
		t.Errorf("--from with --wait: %q", stderr)
	}
	if _, stderr := run(2, "submit", "plant", "--from", work); !strings.Contains(stderr, "directory") {
		t.Errorf("--from a directory: %q", stderr)
	}
}
