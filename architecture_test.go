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
	// Leaves: no rpt imports beyond other leaves.
	"rpt/internal/dsn":          0,
	"rpt/internal/didyoumean":   0,
	"rpt/internal/errclass":     0,
	"rpt/internal/yamlstrict":   0,
	"rpt/internal/inputfile":    0,
	"rpt/internal/queue":        1,
	"rpt/internal/source":       1,
	"rpt/internal/queue/mysql":  2,
	"rpt/internal/queue/sqlite": 2,
	"rpt/internal/notify":       2,
	"rpt/internal/results":      2,
	"rpt/internal/config":       2,
	"rpt/internal/demo":         2,
	"rpt/reportdefs":            3,
	"rpt/internal/jobs":         4,
	"rpt/agent":                 4,
	"rpt/cli":                   5,
	"rpt/cmd/rpt":               6,
	// Test support: may use anything below the front doors, nothing imports them but tests.
	"rpt/internal/queue/queuetest":     4,
	"rpt/internal/results/resultstest": 4,
	"rpt/internal/testenv":             1,
	// Test-only folders (no non-test imports of rpt packages).
	"rpt/e2e":   6,
	"rpt/bench": 6,
	"rpt":       7,
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
