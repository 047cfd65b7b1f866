package crontab

import (
	"errors"
	"math/rand"
	"strings"
	"testing"
	"time"

	robfig "github.com/robfig/cron/v3"

	"rpt/internal/errclass"
)

func mustLoc(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func bits(vs ...int) uint64 {
	var b uint64
	for _, v := range vs {
		b |= 1 << uint(v)
	}
	return b
}

func span(lo, hi, step int) uint64 {
	var b uint64
	for v := lo; v <= hi; v += step {
		b |= 1 << uint(v)
	}
	return b
}

func TestParseFields(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want Schedule
	}{
		{"* * * * *", Schedule{span(0, 59, 1), span(0, 23, 1), span(1, 31, 1), span(1, 12, 1), span(0, 6, 1), true, true}},
		{"10 3,7,11,15,19,23 * * *", Schedule{bits(10), bits(3, 7, 11, 15, 19, 23), span(1, 31, 1), span(1, 12, 1), span(0, 6, 1), true, true}},
		{"*/15 9-17/2 1,15 jan-MAR,Dec mon-fri", Schedule{bits(0, 15, 30, 45), bits(9, 11, 13, 15, 17), bits(1, 15), bits(1, 2, 3, 12), span(1, 5, 1), false, false}},
		{"0 0 * * 7", Schedule{bits(0), bits(0), span(1, 31, 1), span(1, 12, 1), bits(0), true, false}},
		{"0 0 * * 5-7", Schedule{bits(0), bits(0), span(1, 31, 1), span(1, 12, 1), bits(0, 5, 6), true, false}},
		{"0 0 * * SUN", Schedule{bits(0), bits(0), span(1, 31, 1), span(1, 12, 1), bits(0), true, false}},
		{"0 0 */10 * *", Schedule{bits(0), bits(0), bits(1, 11, 21, 31), span(1, 12, 1), span(0, 6, 1), true, true}},
		{"@hourly", Schedule{bits(0), span(0, 23, 1), span(1, 31, 1), span(1, 12, 1), span(0, 6, 1), true, true}},
		{"@daily", Schedule{bits(0), bits(0), span(1, 31, 1), span(1, 12, 1), span(0, 6, 1), true, true}},
		{"@midnight", Schedule{bits(0), bits(0), span(1, 31, 1), span(1, 12, 1), span(0, 6, 1), true, true}},
		{"@weekly", Schedule{bits(0), bits(0), span(1, 31, 1), span(1, 12, 1), bits(0), true, false}},
		{"@monthly", Schedule{bits(0), bits(0), bits(1), span(1, 12, 1), span(0, 6, 1), false, true}},
		{"@yearly", Schedule{bits(0), bits(0), bits(1), bits(1), span(0, 6, 1), false, true}},
		{"@ANNUALLY", Schedule{bits(0), bits(0), bits(1), bits(1), span(0, 6, 1), false, true}},
	} {
		s, err := ParseSchedule(tc.spec)
		if err != nil {
			t.Errorf("%q: %v", tc.spec, err)
			continue
		}
		if *s != tc.want {
			t.Errorf("%q:\n got %+v\nwant %+v", tc.spec, *s, tc.want)
		}
	}
}

func TestParseFile(t *testing.T) {
	src := "# reports\n" +
		"\n" +
		"SHELL=/bin/sh\n" +
		"PATH = \"/usr/local/bin:/usr/bin:/bin\"\n" +
		"MAILTO=''\n" +
		"CRON_TZ=America/Detroit\n" +
		"  10 19 * * 1  /usr/local/bin/rpt submit trial-balance --once-per 1h\n" +
		"TZ=UTC\n" +
		"0 5 * * * printf 'a\\%b' %line one%line two\n" +
		"\t@daily echo \"x y\" | mail -s hi \"$LOGNAME\" > /dev/null\n"
	f, err := Parse("c", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Entries) != 3 || len(f.Env) != 5 {
		t.Fatalf("entries %d env %d", len(f.Entries), len(f.Env))
	}
	if e := f.Env[1]; e.Name != "PATH" || e.Value != "/usr/local/bin:/usr/bin:/bin" || e.Line != 4 || e.Col != 8 {
		t.Errorf("PATH line: %+v", e)
	}
	if f.Env[2].Value != "" {
		t.Errorf("MAILTO='' is empty, got %q", f.Env[2].Value)
	}
	e := f.Entries[0]
	if e.Line != 7 || e.Spec != "10 19 * * 1" || e.Loc.String() != "America/Detroit" || e.CommandCol != 16 || len(e.Env) != 4 {
		t.Errorf("entry 0: line %d spec %q loc %s col %d env %d", e.Line, e.Spec, e.Loc, e.CommandCol, len(e.Env))
	}
	if got := e.Words[0]; len(got) != 5 || got[0].Text != "/usr/local/bin/rpt" || got[2].Text != "trial-balance" || got[2].Col != 42 {
		t.Errorf("words: %+v", got)
	}
	// CRON_TZ wins over a later TZ for the schedule.
	e = f.Entries[1]
	if e.Loc.String() != "America/Detroit" {
		t.Errorf("TZ after CRON_TZ moved the schedule to %s", e.Loc)
	}
	if e.Command != "printf 'a%b' " || e.Stdin != "line one\nline two" || e.PercentCol != 25 {
		t.Errorf("percent: cmd %q stdin %q col %d", e.Command, e.Stdin, e.PercentCol)
	}
	if w := e.Words[0][1]; w.Text != "a%b" || w.Col != 18 {
		t.Errorf("escaped percent word: %+v", w)
	}
	e = f.Entries[2]
	if len(e.Words) != 2 || e.Words[0][1].Text != "x y" || e.Words[1][3].Literal || e.Words[1][3].Col != 33 {
		t.Errorf("pipeline words: %+v", e.Words)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"0 0 32 * * x", "f:1:5: day-of-month: 32 is outside 1-31"},
		{"* * * * * x\n\n\n0 0 1,32 * * x", "f:4:7: day-of-month: 32 is outside 1-31"},
		{"60 * * * * x", "f:1:1: minute: 60 is outside 0-59"},
		{"* 24 * * * x", "f:1:3: hour: 24 is outside 0-23"},
		{"* * * 13 * x", "f:1:7: month: 13 is outside 1-12"},
		{"* * * * 8 x", "f:1:9: day-of-week: 8 is outside 0-7"},
		{"* * * foo * x", `f:1:7: month: "foo" is not a number or a name (jan-dec)`},
		{"* * * * mon-sund x", `f:1:13: day-of-week: "sund" is not a number or a name (sun-sat)`},
		{"5-1 * * * * x", "f:1:1: minute: range 5-1: start is after end"},
		{"*/0 * * * * x", "f:1:3: minute: step 0 is outside 1-60"},
		{"*/a * * * * x", `f:1:3: minute: step "a" is not a number`},
		{"5/10 * * * * x", "f:1:1: minute: 5/10: a step needs a range (5-59/10 or */10)"},
		{"1,,2 * * * * x", "f:1:3: minute: empty list item (two commas, or a comma at an end)"},
		{"* * * *", "f:1:8: day-of-week: missing (a line has five fields: minute hour day-of-month month day-of-week, then the command)"},
		{"* * * * *", "f:1:10: command: missing: a schedule line needs a command after its five fields"},
		{"* * * * *   ", "f:1:13: command: missing: a schedule line needs a command after its five fields"},
		{"@reboot rpt agent", "f:1:1: schedule: @reboot is not supported: rpt cron schedules by the clock, and a node's boot is no occurrence (use the init system)"},
		{"@fortnightly x", `f:1:1: schedule: unknown macro "@fortnightly" (want @hourly, @daily, @midnight, @weekly, @monthly, @yearly or @annually)`},
		{"CRON_TZ=Mars/Olympus\n", `f:1:9: CRON_TZ: unknown time zone "Mars/Olympus" (want an IANA name such as America/Indiana/Indianapolis)`},
		{"X=\"open\n", "f:1:3: X: quote \" is not closed"},
		{"mon * * * * x", `f:1:1: minute: "mon" is not a number (names are allowed in month and day-of-week only)`},
		{"hello world", "f:1:1: want five schedule fields and a command, an @-macro (@daily ...), NAME=value or a # comment"},
		{"* * * * * echo 'unclosed", "f:1:16: command: /bin/sh cannot parse it: reached EOF without closing quote `'`"},
		{"* * * * * echo (", "f:1:11: command: /bin/sh cannot parse it: `foo(` must be followed by `)`"},
	} {
		_, err := Parse("f", []byte(tc.src))
		if err == nil {
			t.Errorf("%q: no error, want %s", tc.src, tc.want)
			continue
		}
		if err.Error() != tc.want {
			t.Errorf("%q:\n got %s\nwant %s", tc.src, err, tc.want)
		}
		if c, _ := errclass.Of(err); c != errclass.Invalid {
			t.Errorf("%q: class %v, want invalid", tc.src, c)
		}
	}
}

func TestParseEveryError(t *testing.T) {
	_, err := Parse("f", []byte("61 * * * * a\n* * * * * b\n* 25 * * * c\n"))
	var es Errors
	if !errors.As(err, &es) || len(es) != 2 || es[0].Line != 1 || es[1].Line != 3 {
		t.Fatalf("want both bad lines, got %v", err)
	}
}

func TestReadFileRefusesFIFOAndFolders(t *testing.T) {
	if _, err := ReadFile("/dev/zero"); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("/dev/zero: %v", err)
	}
	if _, err := ReadFile(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("folder: %v", err)
	}
}

type dstCase struct {
	spec string
	from string // local wall clock
	want []string
}

// The 2027 transitions of both Eastern zones: clocks go from 02:00 EST to 03:00 EDT
// on 14 March and from 02:00 EDT back to 01:00 EST on 7 November.
func TestNextDST2027(t *testing.T) {
	cases := []dstCase{
		// Spring gap: 02:30 does not exist, runs once at 03:00 EDT.
		{"30 2 * * *", "2027-03-13 12:00", []string{"2027-03-14T07:00:00Z", "2027-03-15T06:30:00Z"}},
		// Every minute of the gap maps to 03:00: one run, then 03:00's own minute is the same run.
		{"*/15 2,3 * * *", "2027-03-14 01:50", []string{"2027-03-14T07:00:00Z", "2027-03-14T07:15:00Z", "2027-03-14T07:30:00Z"}},
		// The minute before the gap and the one after are untouched.
		{"59 1 * * *", "2027-03-13 12:00", []string{"2027-03-14T06:59:00Z", "2027-03-15T05:59:00Z"}},
		{"0 3 * * *", "2027-03-13 12:00", []string{"2027-03-14T07:00:00Z", "2027-03-15T07:00:00Z"}},
		// Hourly across the gap: 01:00 EST, 03:00 EDT (02:00 does not exist, maps to 03:00).
		{"0 * * * *", "2027-03-14 00:30", []string{"2027-03-14T06:00:00Z", "2027-03-14T07:00:00Z", "2027-03-14T08:00:00Z"}},
		// Autumn overlap: 01:30 exists twice, runs at the first (EDT) only.
		{"30 1 * * *", "2027-11-06 12:00", []string{"2027-11-07T05:30:00Z", "2027-11-08T06:30:00Z"}},
		{"*/30 * * * *", "2027-11-07 00:10", []string{"2027-11-07T04:30:00Z", "2027-11-07T05:00:00Z", "2027-11-07T05:30:00Z", "2027-11-07T07:00:00Z"}},
		{"0 2 * * *", "2027-11-06 12:00", []string{"2027-11-07T07:00:00Z", "2027-11-08T07:00:00Z"}},
		// The reports' schedules on both transition days.
		{"10 3,7,11,15,19,23 * * *", "2027-03-14 00:00", []string{"2027-03-14T07:10:00Z", "2027-03-14T11:10:00Z"}},
		{"10 19 * * 1", "2027-11-06 00:00", []string{"2027-11-09T00:10:00Z"}},
		{"20 7 * * *", "2027-11-07 00:00", []string{"2027-11-07T12:20:00Z"}},
	}
	for _, zone := range []string{"America/Indiana/Indianapolis", "America/Detroit"} {
		loc := mustLoc(t, zone)
		for _, tc := range cases {
			s, err := ParseSchedule(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			from, err := time.ParseInLocation("2006-01-02 15:04", tc.from, loc)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			at := from
			for range tc.want {
				at = s.Next(at, loc)
				got = append(got, at.UTC().Format(time.RFC3339))
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("%s %q from %s:\n got %v\nwant %v", zone, tc.spec, tc.from, got, tc.want)
			}
		}
	}
}

// A start inside the repeated hour's second instance does not run what already ran at
// the first instance.
func TestNextFromSecondInstance(t *testing.T) {
	loc := mustLoc(t, "America/Detroit")
	s, _ := ParseSchedule("30 1 * * *")
	from := time.Date(2027, 11, 7, 6, 10, 0, 0, time.UTC) // 01:10 EST, the second 01:10
	if got := s.Next(from, loc); !got.Equal(time.Date(2027, 11, 8, 6, 30, 0, 0, time.UTC)) {
		t.Errorf("got %s", got.UTC())
	}
}

func TestNextDomDowOr(t *testing.T) {
	s, _ := ParseSchedule("0 0 13 * fri") // the 13th and every Friday
	at := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	var got []string
	for range 5 {
		at = s.Next(at, time.UTC)
		got = append(got, at.Format("01-02"))
	}
	if want := "01-08 01-13 01-15 01-22 01-29"; strings.Join(got, " ") != want {
		t.Errorf("got %v want %s", got, want)
	}
	// '*/2' in day-of-week starts with '*': Vixie cron ANDs the days then.
	s, _ = ParseSchedule("0 0 13 * */2")
	if got := s.Next(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), time.UTC); got.Format("2006-01-02") != "2027-02-13" {
		t.Errorf("13th on an even weekday: got %s", got)
	}
}

func TestNextNever(t *testing.T) {
	s, _ := ParseSchedule("0 0 30 2 *")
	if got := s.Next(time.Now(), time.UTC); !got.IsZero() {
		t.Errorf("February 30th ran at %s", got)
	}
	s, _ = ParseSchedule("0 0 29 2 *")
	if got := s.Next(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), time.UTC); got.Format("2006-01-02") != "2028-02-29" {
		t.Errorf("leap day: %s", got)
	}
}

// robfig/cron agrees with Next in UTC wherever the two define the same thing: no 7 for
// Sunday, no "*/N" in a day field (robfig treats it as restricted, Vixie as '*').
func TestNextAgreesWithRobfig(t *testing.T) {
	r := rand.New(rand.NewSource(14))
	parser := robfig.NewParser(robfig.Minute | robfig.Hour | robfig.Dom | robfig.Month | robfig.Dow)
	item := func(lo, hi int, dayField bool) string {
		switch r.Intn(6) {
		case 0:
			if dayField {
				return "*"
			}
			return "*/" + itoa(1+r.Intn(hi-lo+1))
		case 1:
			a := lo + r.Intn(hi-lo+1)
			b := a + r.Intn(hi-a+1)
			return itoa(a) + "-" + itoa(b) + "/" + itoa(1+r.Intn(3))
		case 2:
			return "*"
		default:
			out := itoa(lo + r.Intn(hi-lo+1))
			for r.Intn(2) == 0 {
				out += "," + itoa(lo+r.Intn(hi-lo+1))
			}
			return out
		}
	}
	for i := 0; i < 3000; i++ {
		spec := strings.Join([]string{item(0, 59, false), item(0, 23, false), item(1, 31, true), item(1, 12, false), item(0, 6, true)}, " ")
		ours, err := ParseSchedule(spec)
		if err != nil {
			t.Fatalf("%q: %v", spec, err)
		}
		theirs, err := parser.Parse(spec)
		if err != nil {
			t.Fatalf("robfig %q: %v", spec, err)
		}
		from := time.Date(2026+r.Intn(3), time.Month(1+r.Intn(12)), 1+r.Intn(28), r.Intn(24), r.Intn(60), r.Intn(60), 0, time.UTC)
		a, b := from, from
		for k := 0; k < 5; k++ {
			a, b = ours.Next(a, time.UTC), theirs.Next(b)
			if !a.Equal(b) {
				t.Fatalf("%q from %s run %d: ours %s robfig %s", spec, from, k, a, b)
			}
			if a.IsZero() {
				break
			}
		}
	}
}

func itoa(n int) string { return strings.TrimSpace(strings.Repeat(" ", 0) + fmtInt(n)) }

func fmtInt(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return fmtInt(n/10) + string(rune('0'+n%10))
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"* * * * * x", "10 3,7,11,15,19,23 * * * /usr/local/bin/rpt submit trial-balance --once-per 1h",
		"@daily a%b%c", "CRON_TZ=America/Detroit\n0 2 * * * x", "*/0 * * * * x", "0 0 * * 7 \\%x",
		"X = 'y'\n# c\n\n1-5/2 * * jan-dec sun-sat a", "* * * * * echo 'a", "@reboot x",
		"RPT_CONFIG=x\n0 0 * * * A=1 rpt --config=y submit r -p a=1 -p=b=2 --once-per 1h --dedupe -- x y | rpt submit",
		"0 0 * * * rpt submit r --once-per", "0 0 * * * rpt -p", "0 0 * * * rpt submit r --bogus v w",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		file, err := Parse("f", []byte(src))
		if err != nil {
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("error of the wrong kind: %T %v", err, err)
			}
			for _, e := range es {
				if e.Line < 1 || e.Col < 0 {
					t.Fatalf("no place: %v", e)
				}
			}
			return
		}
		// Lint reads every rpt line's words and flags; it must never panic on them.
		for _, p := range Lint(file, LintOptions{Now: time.Date(2027, 3, 14, 0, 0, 0, 0, time.UTC), IsExecutable: func(string) bool { return false }}) {
			if p.Line < 1 {
				t.Fatalf("problem without a line: %s", p)
			}
		}
		for _, e := range file.Entries {
			next := e.Schedule.Next(time.Date(2027, 3, 14, 0, 0, 0, 0, time.UTC), e.Loc)
			if !next.IsZero() && !next.After(time.Date(2027, 3, 14, 0, 0, 0, 0, time.UTC)) {
				t.Fatalf("next %s not after from", next)
			}
			for _, ws := range e.Words {
				for _, w := range ws {
					if w.Col < e.CommandCol {
						t.Fatalf("word %q at column %d before the command (%d)", w.Raw, w.Col, e.CommandCol)
					}
				}
			}
		}
	})
}
