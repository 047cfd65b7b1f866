package deliver

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"rpt/internal/config"
	"rpt/internal/errclass"
)

func TestParse(t *testing.T) {
	for _, tt := range []struct{ in, want, err string }{
		{in: "mailto:accounting@example.com", want: "mailto:accounting@example.com"},
		{in: "accounting@Example.COM", want: "mailto:accounting@example.com"},
		{in: "MAILTO:b@example.com, a@example.com,a@example.com", want: "mailto:a@example.com,b@example.com"},
		{in: "mailto:a@example.com?format=csv", want: "mailto:a@example.com?format=csv"},
		{in: "mailto:a@example.com?format=xlsx", want: "mailto:a@example.com"},
		{in: "https://hooks.example.com/rpt/tb?x=1", want: "https://hooks.example.com/rpt/tb?x=1"},
		{in: "", err: "empty target"},
		{in: "mailto:", err: "not an e-mail address"},
		{in: "mailto:Accounting <a@example.com>", err: "not an e-mail address"},
		{in: "mailto:a@example.com\r\nBcc: x@evil.net", err: "not an e-mail address"},
		{in: "mailto:a@localhost", err: "the domain has no dot"},
		{in: "mailto:a@example.com?format=pdf", err: "format=xlsx|csv|json"},
		{in: "mailto:a@example.com?cc=b@evil.net", err: "the only option is format"},
		{in: "ftp://x.example.com/", err: "want mailto:"},
		{in: "https://user:pw@hooks.example.com/", err: "user or password"},
		{in: "nobody", err: "want mailto:"},
	} {
		got, err := Parse(tt.in)
		switch {
		case tt.err != "":
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Parse(%q) = %v, %v; want error %q", tt.in, got, err, tt.err)
			} else if c, _ := errclass.Of(err); c != errclass.Invalid {
				t.Errorf("Parse(%q): class %s, want invalid", tt.in, c)
			}
		case err != nil || got.String() != tt.want:
			t.Errorf("Parse(%q) = %q, %v; want %q", tt.in, got.String(), err, tt.want)
		}
	}
	var many []string
	for i := 0; i <= MaxRecipients; i++ {
		many = append(many, strings.Repeat("a", i+1)+"@example.com")
	}
	if _, err := Parse("mailto:" + strings.Join(many, ",")); err == nil {
		t.Errorf("%d recipients accepted", len(many))
	}
}

func TestAllowed(t *testing.T) {
	smtp := &config.SMTP{Host: "smtp.example.com", From: "r@example.com"}
	c := config.Deliver{EmailDomains: []string{"example.com"}, Webhooks: []string{"https://hooks.example.com/rpt/", "https://other.example.com/x"}}
	for _, tt := range []struct {
		target string
		ok     bool
	}{
		{"mailto:a@example.com", true},
		{"mailto:a@example.com,b@evil.example.net", false},
		{"mailto:a@sub.example.com", false}, // domains are exact
		{"https://hooks.example.com/rpt/tb", true},
		{"https://hooks.example.com/rptx", false},
		{"https://hooks.example.com.evil.net/rpt/", false},
		{"https://other.example.com/x", true},
		{"https://other.example.com/x?y=1", true},
		{"https://other.example.com/xy", false},
		{"http://hooks.example.com/rpt/", false},
	} {
		tg, err := Parse(tt.target)
		if err != nil {
			t.Fatal(err)
		}
		err = tg.Allowed(c, smtp)
		if (err == nil) != tt.ok {
			t.Errorf("%s: allowed %v (%v), want %v", tt.target, err == nil, err, tt.ok)
		}
		if err != nil {
			if cl, _ := errclass.Of(err); cl != errclass.Forbidden {
				t.Errorf("%s: class %s, want forbidden", tt.target, cl)
			}
		}
	}
	tg, _ := Parse("mailto:a@example.com")
	if err := tg.Allowed(c, nil); err == nil || !strings.Contains(err.Error(), "no smtp:") {
		t.Errorf("without smtp: %v", err)
	}
	if err := tg.Allowed(config.Deliver{}, smtp); err == nil || !strings.Contains(err.Error(), "allowed to no domain") {
		t.Errorf("empty allow list: %v", err)
	}
	if err := tg.Allowed(config.Deliver{EmailDomains: []string{"*"}}, smtp); err != nil {
		t.Errorf("*: %v", err)
	}
}

// Check's refusal carries the field and the target's place, and keeps the class and
// text it had; the accepted targets come back canonical, without repeats.
func TestCheckNamesTheField(t *testing.T) {
	smtp := &config.SMTP{Host: "smtp.example.com", From: "r@example.com"}
	c := config.Deliver{EmailDomains: []string{"example.com"}}
	for _, tt := range []struct {
		targets []string
		name    string
		index   int
		class   errclass.Class
	}{
		{[]string{"ftp://example.com/x"}, "deliver", 0, errclass.Invalid},
		{[]string{"mailto:a@example.com", "mailto:b@evil.example.net"}, "deliver[1]", 1, errclass.Forbidden},
	} {
		_, err := Check(tt.targets, "deliver", c, smtp)
		var fe *FieldError
		if !errors.As(err, &fe) {
			t.Fatalf("%v: %v carries no *FieldError", tt.targets, err)
		}
		if fe.Field != "deliver" || fe.Name != tt.name || fe.Index != tt.index {
			t.Errorf("%v: field %q name %q index %d, want deliver %s %d", tt.targets, fe.Field, fe.Name, fe.Index, tt.name, tt.index)
		}
		if cl, _ := errclass.Of(err); cl != tt.class || !strings.HasPrefix(err.Error(), tt.name+": ") {
			t.Errorf("%v: %s %q, want class %s and the text starting %s: ", tt.targets, cl, err, tt.class, tt.name)
		}
	}
	got, err := Check([]string{"mailto:a@example.com", "mailto:a@example.com"}, "deliver", c, smtp)
	if err != nil || !slices.Equal(got, []string{"mailto:a@example.com"}) {
		t.Errorf("repeated target: %v %v, want it once", got, err)
	}
}

func TestSubject(t *testing.T) {
	loc, err := time.LoadLocation("America/Indiana/Indianapolis")
	if err != nil {
		t.Fatal(err)
	}
	// Monday 19:10 EST is already Tuesday in UTC: the date is the plants'.
	at := time.Date(2027, 3, 2, 0, 30, 0, 0, time.UTC)
	if got := Subject("trial-balance", at, loc); got != "Trial Balance Report - 2027-03-01" {
		t.Errorf("subject %q", got)
	}
	if got := sheetName("daily-production"); got != "Daily Production" {
		t.Errorf("sheet %q", got)
	}
}

func TestSignVerify(t *testing.T) {
	body := []byte(`{"job":1}`)
	sig := Sign("k", body)
	if !strings.HasPrefix(sig, "sha256=") || len(sig) != 7+64 || !Verify("k", body, sig) {
		t.Fatalf("signature %q does not verify", sig)
	}
	if Verify("other", body, sig) || Verify("k", []byte(`{"job":2}`), sig) || Verify("k", body, "") {
		t.Fatal("a wrong key, body or empty signature verified")
	}
}
