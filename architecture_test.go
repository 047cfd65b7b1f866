// Package rpt_test holds the checks on the repository's structure as a whole.
package rpt_test

import (
	"os/exec"
	"sort"
	"strings"
	"testing"
)

// layer places every package of the module. A package may import only packages of a
// lower layer (ARCHITECTURE.md, "Layers and import rules"). A new package must be
// placed here, so that where it sits is decided, not drifted into.
var layer = map[string]int{
	// Leaves: nothing of rpt, or only other leaves of a lower layer.
	"rpt/internal/dsn":          0,
	"rpt/internal/didyoumean":   0,
	"rpt/internal/errclass":     0,
	"rpt/internal/inputfile":    0,
	"rpt/internal/storemode":    0,
	"rpt/internal/deffiles":     0,
	"rpt/internal/yamlstrict":   1,
	"rpt/internal/queue":        2,
	"rpt/internal/source":       2,
	"rpt/internal/source/odbc":  3,
	"rpt/internal/queue/mysql":  3,
	"rpt/internal/queue/sqlite": 3,
	"rpt/internal/notify":       3,
	"rpt/internal/results":      3,
	"rpt/internal/config":       3,
	"rpt/internal/demo":         3,
	"rpt/reportdefs":            4,
	"rpt/etl":                   4,
	"rpt/internal/deliver":      4,
	"rpt/internal/jobs":         5,
	"rpt/agent":                 5,
	// The Plex web-service driver (above internal/source, which it registers with) and
	// its test stand-in (a leaf).
	"rpt/internal/source/plexws":            3,
	"rpt/internal/source/plexws/plexwstest": 0,
	// Front doors below the command line: the cron runner, the HTTP API.
	"rpt/crontab":      6,
	"rpt/internal/api": 6,
	"rpt/internal/web": 6,
	"rpt/cli":          7,
	"rpt/cmd/rpt":      8,
	// Test support: may use anything below the front doors; only tests import them.
	"rpt/internal/queue/queuetest":     5,
	"rpt/internal/results/resultstest": 5,
	"rpt/internal/testenv":             2,
	// Test-only folders.
	"rpt/e2e":    9,
	"rpt/bench":  9,
	"rpt/deploy": 9,
	"rpt":        9,

	// The MongoDB results store (reads jobs, and config's store names), and the embedded
	// FerretDB its tests run on (imported by tests only, so rpt does not link it).
	"rpt/internal/results/mongo":           4,
	"rpt/internal/results/mongo/mongotest": 0,
}

func TestImportRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var problems []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg := f[0]
		pl, ok := layer[pkg]
		if !ok {
			problems = append(problems, pkg+": not placed in a layer (add it to architecture_test.go and ARCHITECTURE.md)")
			continue
		}
		for _, imp := range f[1:] {
			if imp != "rpt" && !strings.HasPrefix(imp, "rpt/") {
				continue
			}
			if imp == "rpt/cli" && pkg != "rpt/cmd/rpt" {
				problems = append(problems, pkg+" imports rpt/cli: nothing but cmd/rpt may")
				continue
			}
			if imp == "rpt/crontab" && pkg != "rpt/cli" {
				problems = append(problems, pkg+" imports rpt/crontab: nothing but cli may")
				continue
			}
			il, ok := layer[imp]
			if !ok {
				continue // reported on its own line
			}
			if il >= pl {
				problems = append(problems, pkg+" (layer "+itoa(pl)+") imports "+imp+" (layer "+itoa(il)+"): imports must point down")
			}
		}
	}
	sort.Strings(problems)
	for _, p := range problems {
		t.Error(p)
	}
}

func itoa(n int) string { return string(rune('0' + n)) }
