package etl_test

import (
	"strings"
	"testing"

	"rpt/etl"
)

// TestFullRoundTripExact: the values LOAD DATA's text form has to escape or could
// misread (tabs, newlines, carriage returns, backslashes, NUL, text that looks like \N,
// the literal NULL), 4-byte UTF-8, a DECIMAL(20,2) beyond float64's exact range, and
// DATETIME(6) microseconds arrive exactly, with both loaders, into an empty target and
// over a previous load.
func TestFullRoundTripExact(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.plexExec(t, `CREATE TABLE tricky (id INT NOT NULL PRIMARY KEY, note VARCHAR(100) NULL, amount DECIMAL(20,2) NULL, at DATETIME(6) NULL)
		DEFAULT CHARSET=utf8mb4`)
	e.plexExec(t, `INSERT INTO tricky VALUES
		(1, 'tab\there\tand\tthere', 12345678901234567.89, '2026-03-04 05:06:07.123456'),
		(2, 'line\nbreak\r\ncrlf', -12345678901234567.89, '2026-03-04 05:06:07'),
		(3, 'back\\slash \\t not a tab \\\\ two', 0.01, '1000-01-01 00:00:00.000001'),
		(4, '\\N', -0.01, '9999-12-31 23:59:59.999999'),
		(5, 'NULL', 0.00, '2026-12-31 23:59:59.5'),
		(6, 'emoji 🚀 Grüße 𝄞 中文', 99999999999999999.99, '2026-01-01 00:00:00'),
		(7, CONCAT('nul', CHAR(0), 'byte'), NULL, NULL),
		(8, NULL, 1.10, '2026-06-30 12:00:00.000100'),
		(9, '', 7.00, '2026-02-28 23:59:59.999990'),
		(10, '\\', 8.00, '2026-02-28 00:00:00.1')`)
	want := strings.Join([]string{
		"1|tab\there\tand\tthere|12345678901234567.89|2026-03-04 05:06:07.123456",
		"2|line\nbreak\r\ncrlf|-12345678901234567.89|2026-03-04 05:06:07.000000",
		"3|back\\slash \\t not a tab \\\\ two|0.01|1000-01-01 00:00:00.000001",
		"4|\\N|-0.01|9999-12-31 23:59:59.999999",
		"5|NULL|0.00|2026-12-31 23:59:59.500000",
		"6|emoji 🚀 Grüße 𝄞 中文|99999999999999999.99|2026-01-01 00:00:00.000000",
		"7|nul\x00byte|<nil>|<nil>",
		"8|<nil>|1.10|2026-06-30 12:00:00.000100",
		"9||7.00|2026-02-28 23:59:59.999990",
		"10|\\|8.00|2026-02-28 00:00:00.100000",
	}, "\n")
	for _, loader := range []string{etl.LoaderInfile, etl.LoaderInsert} {
		def := mustParse(t, `name: tricky-`+loader+`
source: plex
extract: {table: tricky}
mode: full
target:
  table: tricky_`+loader+`
  create: |
    CREATE TABLE tricky_`+loader+` (id INT NOT NULL PRIMARY KEY, note VARCHAR(100) NULL, amount DECIMAL(20,2) NULL, at DATETIME(6) NULL)
    DEFAULT CHARSET=utf8mb4
`)
		for _, run := range []string{"empty target", "over the previous load"} {
			st := e.run(t, def, etl.Options{Loader: loader, BatchRows: 3})
			if st.Loader != loader || st.Written != 10 {
				t.Fatalf("%s, %s: %+v", loader, run, st)
			}
			got := strings.Join(e.whRows(t, "SELECT id, note, amount, at FROM tricky_"+loader+" ORDER BY id"), "\n")
			if got != want {
				t.Errorf("%s, %s: target\n%q\nwant\n%q", loader, run, got, want)
			}
		}
	}
}
