package cli_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// sayOnceWordRE is a word or number of a message's own text; quoted values, paths and
// field paths (params[0].values) are not its words.
var sayOnceWordRE = regexp.MustCompile(`^[a-z0-9][a-z0-9'-]*$`)

// repeatedWords finds where a message says a thing twice: the same word twice in a row
// ("the the", "sqlite: SQLite") or the same two words twice ("job 9999: get job: job
// 9999: not found"). Quoted values ("..." and `...`) and what is in parentheses (a
// hint such as "(rpt submit --help lists the flags)") are not counted: they quote.
func repeatedWords(msg string) string {
	msg = strings.TrimPrefix(msg, "rpt: ")
	msg = regexp.MustCompile("\"[^\"]*\"|`[^`]*`").ReplaceAllString(msg, " ")
	var b strings.Builder
	depth := 0
	for _, r := range msg {
		switch {
		case r == '(':
			depth++
		case r == ')':
			depth = max(0, depth-1)
		case depth == 0:
			b.WriteRune(r)
		}
	}
	var words []string
	for _, w := range strings.Fields(b.String()) {
		w = strings.ToLower(strings.Trim(w, ",;:.!?"))
		if sayOnceWordRE.MatchString(w) {
			words = append(words, w)
		}
	}
	seen := map[[2]string]bool{}
	for i := 0; i+1 < len(words); i++ {
		if words[i] == words[i+1] && len(words[i]) > 1 {
			return words[i] + " " + words[i+1]
		}
		pair := [2]string{words[i], words[i+1]}
		if seen[pair] {
			return pair[0] + " " + pair[1] + " (twice)"
		}
		seen[pair] = true
	}
	return ""
}

func TestRepeatedWords(t *testing.T) {
	for msg, want := range map[string]string{
		"rpt: job 9999: get job: job 9999: not found":                                               "job job",
		`rpt: procedure: source "w" is sqlite: SQLite has no stored procedures`:                     "sqlite sqlite",
		"rpt: job 9999 not found (rpt jobs list shows the jobs there are)":                          "",
		"rpt: submit: unknown flag --frob (rpt submit --help lists the flags)":                      "",
		`rpt: $WORK/d/r.yaml:4:34: params[0].values: only an enum parameter takes values`:           "",
		`rpt: unknown report "trial-balanse" (known: trial-balance); did you mean "trial-balance"?`: "",
	} {
		if got := repeatedWords(msg); got != want {
			t.Errorf("repeatedWords(%q) = %q, want %q", msg, got, want)
		}
	}
}

// TestCatalogueSaysItOnce: no message of the bad-input catalogue repeats itself (the
// golden files are what rpt prints for each mistake).
func TestCatalogueSaysItOnce(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join(catalogueDir, "*.golden"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no golden files in %s: %v", catalogueDir, err)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "--- stdout") {
				break // what a command printed, not its message
			}
			if rep := repeatedWords(line); rep != "" {
				t.Errorf("%s: says %q:\n%s", filepath.Base(p), rep, line)
			}
		}
	}
}
