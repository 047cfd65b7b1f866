// Package deliver sends a finished report job's result somewhere: by e-mail (an
// attachment, over SMTP with github.com/wneessen/go-mail) or to a webhook (a JSON POST
// signed with HMAC-SHA256). It parses and checks delivery targets (the same check at
// submit and on the agent, against rpt.yaml's deliver: allow lists), builds the message
// and hands it over; the deliver job kind (agent/deliver.go) decides when, and records
// whether it went (queue.Deliveries). See ARCHITECTURE.md, "Delivery".
package deliver

import (
	"fmt"
	"net/mail"
	"net/url"
	"slices"
	"strings"

	"rpt/internal/config"
	"rpt/internal/errclass"
)

// Kinds of target.
const (
	KindEmail   = "email"
	KindWebhook = "webhook"
)

// Formats an e-mail attachment may have.
var Formats = []string{"xlsx", "csv", "json"}

// MaxRecipients bounds the addresses of one target.
const MaxRecipients = 20

// Target is a parsed delivery target.
type Target struct {
	Kind   string
	To     []string // e-mail: bare addresses, lower-cased domain
	Format string   // e-mail: xlsx (default) or csv
	URL    string   // webhook
}

// String is the target's canonical form, as stored in rpt_deliveries: the same target
// written two ways is one delivery.
func (t Target) String() string {
	if t.Kind == KindWebhook {
		return t.URL
	}
	s := "mailto:" + strings.Join(t.To, ",")
	if t.Format != "xlsx" {
		s += "?format=" + t.Format
	}
	return s
}

// Parse reads a target: mailto:ADDR[,ADDR...][?format=csv], or an https:// (http://)
// URL for a webhook. A bare address is taken as mailto:. Errors are invalid input and
// say what is wrong; the caller names the field.
func Parse(s string) (Target, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return Target{}, errclass.New(errclass.Invalid, "empty target (want mailto:ADDR or https://URL)")
	case strings.HasPrefix(s, "https://"), strings.HasPrefix(s, "http://"):
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			return Target{}, errclass.Errorf(errclass.Invalid, "%q: not a URL", s)
		}
		if u.User != nil {
			return Target{}, errclass.New(errclass.Invalid, "webhook URL with a user or password: the body is signed with deliver.webhook_secret instead")
		}
		if u.Fragment != "" {
			return Target{}, errclass.Errorf(errclass.Invalid, "%q: a URL fragment (#) is never sent", s)
		}
		return Target{Kind: KindWebhook, URL: u.String()}, nil
	case strings.HasPrefix(strings.ToLower(s), "mailto:"):
		s = s[len("mailto:"):]
	case strings.Contains(s, "://") || !strings.Contains(s, "@"):
		return Target{}, errclass.Errorf(errclass.Invalid, "%q: want mailto:ADDR[,ADDR] or an https:// webhook URL", s)
	}
	t := Target{Kind: KindEmail, Format: "xlsx"}
	addrs, query, _ := strings.Cut(s, "?")
	if query != "" {
		q, err := url.ParseQuery(query)
		if err != nil {
			return Target{}, errclass.Errorf(errclass.Invalid, "%q: bad ?query", query)
		}
		for k, v := range q {
			if k != "format" || len(v) != 1 || !slices.Contains(Formats, v[0]) {
				return Target{}, errclass.Errorf(errclass.Invalid, "?%s: the only option is format=%s", k, strings.Join(Formats, "|"))
			}
			t.Format = v[0]
		}
	}
	for _, a := range strings.Split(addrs, ",") {
		a = strings.TrimSpace(a)
		addr, err := mail.ParseAddress(a)
		if err != nil || addr.Name != "" || addr.Address != a || strings.ContainsAny(a, "<>\"\r\n ") {
			return Target{}, errclass.Errorf(errclass.Invalid, "%q: not an e-mail address (want name@example.com)", a)
		}
		local, domain, _ := strings.Cut(addr.Address, "@")
		if !strings.Contains(domain, ".") {
			return Target{}, errclass.Errorf(errclass.Invalid, "%q: the domain has no dot", a)
		}
		full := local + "@" + strings.ToLower(domain)
		if !slices.Contains(t.To, full) {
			t.To = append(t.To, full)
		}
	}
	if len(t.To) > MaxRecipients {
		return Target{}, errclass.Errorf(errclass.Invalid, "%d recipients: at most %d", len(t.To), MaxRecipients)
	}
	slices.Sort(t.To)
	return t, nil
}

// Allowed checks the target against rpt.yaml's deliver: block, the trust boundary of
// delivery: e-mail only to the listed domains (and with smtp: configured), webhooks only
// under the listed URL prefixes. Errors are class forbidden and say what to configure.
func (t Target) Allowed(c config.Deliver, smtp *config.SMTP) error {
	switch t.Kind {
	case KindEmail:
		if smtp == nil {
			return errclass.New(errclass.Forbidden, "e-mail delivery is not configured (no smtp: in rpt.yaml)")
		}
		for _, a := range t.To {
			_, domain, _ := strings.Cut(a, "@")
			if !slices.Contains(c.EmailDomains, "*") && !slices.Contains(c.EmailDomains, domain) {
				if len(c.EmailDomains) == 0 {
					return errclass.Errorf(errclass.Forbidden, "%s: e-mail delivery is allowed to no domain (deliver.email_domains in rpt.yaml is empty)", a)
				}
				return errclass.Errorf(errclass.Forbidden, "%s: domain %s is not allowed (deliver.email_domains: %s)", a, domain, strings.Join(c.EmailDomains, ", "))
			}
		}
		return nil
	case KindWebhook:
		for _, p := range c.Webhooks {
			if strings.HasPrefix(t.URL, p) && (strings.HasSuffix(p, "/") || len(t.URL) == len(p) || strings.ContainsAny(t.URL[len(p):len(p)+1], "/?")) {
				return nil
			}
		}
		if len(c.Webhooks) == 0 {
			return errclass.Errorf(errclass.Forbidden, "%s: webhook delivery is allowed to no URL (deliver.webhooks in rpt.yaml is empty)", redactURL(t.URL))
		}
		return errclass.Errorf(errclass.Forbidden, "%s: not under an allowed prefix (deliver.webhooks: %s)", redactURL(t.URL), strings.Join(c.Webhooks, ", "))
	}
	return errclass.Errorf(errclass.Invalid, "unknown target kind %q", t.Kind)
}

// Shown is a stored target as views show it: a webhook URL without its query (which
// often carries a token).
func Shown(target string) string {
	if strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://") {
		return redactURL(target)
	}
	return target
}

// redactURL drops the query of a URL for messages: webhook URLs often carry a token there.
func redactURL(s string) string {
	if i := strings.IndexByte(s, '?'); i >= 0 {
		return s[:i] + "?..."
	}
	return s
}

// FieldError is the target Check refused, in the chain of its error (errors.As), so a
// front door names the field without reading the message: Field is the caller's name
// for the list as given to Check, Index the target's place in it, Name what the
// message calls it (Field, or Field[Index] when the list has more than one target).
type FieldError struct {
	Field string
	Index int
	Name  string
	Err   error // why the target was refused
}

func (e *FieldError) Error() string { return e.Name + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// Check parses every target and checks it against the allow lists; field names each in
// errors ("--deliver", "deliver[1]"), and a refusal carries a *FieldError. It returns
// the canonical targets, without repeats.
func Check(targets []string, field string, c config.Deliver, smtp *config.SMTP) ([]string, error) {
	var out []string
	for i, s := range targets {
		t, err := Parse(s)
		if err == nil {
			err = t.Allowed(c, smtp)
		}
		if err != nil {
			name := field
			if len(targets) > 1 {
				name = fmt.Sprintf("%s[%d]", field, i)
			}
			cls, _ := errclass.Of(err)
			fe := &FieldError{Field: field, Index: i, Name: name, Err: err}
			return nil, &errclass.Error{Class: cls, Msg: fe.Error(), Err: fe}
		}
		if c := t.String(); !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out, nil
}
