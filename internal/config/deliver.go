package config

import (
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"rpt/internal/yamlstrict"
)

// SMTP is the smtp: block: the server deliveries by e-mail go through. The password
// comes from ${VAR} or password_file, never from the file itself in plain text (it is
// accepted there, but kept out of every message and output).
type SMTP struct {
	Host string
	Port int    // default 587 (starttls), 465 (tls), 25 (none)
	TLS  string // starttls (default), tls, none
	// Username and Password authenticate (PLAIN or LOGIN); no username: no auth.
	Username     string
	Password     string `json:"-"`
	PasswordFile string // read at each send, so a rotated secret is picked up
	From         string // "Reports <reports@example.com>"
	Timeout      time.Duration
}

// SMTPTLS are the values smtp.tls may take.
var SMTPTLS = []string{"starttls", "tls", "none"}

// Deliver is the deliver: block: where results may be delivered to. An empty list
// allows nothing: a submitter cannot mail or post results anywhere the operator did
// not name. Agents check it again before sending, so a delivery written into the queue
// by hand is refused too.
type Deliver struct {
	// EmailDomains are the recipient domains allowed ("example.com"; "*" allows any).
	EmailDomains []string
	// Webhooks are URL prefixes allowed ("https://hooks.example.com/rpt/").
	Webhooks []string
	// WebhookSecret signs webhook bodies (HMAC-SHA256); required for webhooks.
	WebhookSecret string `json:"-"`
	// MaxAttachment bounds an e-mail attachment in bytes; a larger result is replaced
	// by how to fetch it. Default 10 MiB.
	MaxAttachment int
}

// DefaultMaxAttachment is deliver.max_attachment when not set.
const DefaultMaxAttachment = 10 << 20

func smtpBlock(d *yamlstrict.Doc, n *yaml.Node, path string) SMTP {
	var s SMTP
	d.Mapping(n, path,
		yamlstrict.Field{Key: "host", Fn: func(v *yaml.Node, fp string) {
			s.Host, _ = d.Str(v, fp)
			if strings.TrimSpace(s.Host) == "" || strings.ContainsAny(s.Host, " /:@") {
				d.At(v, fp, "want a host name (smtp.example.com), got %q", shown(v, s.Host))
			}
		}},
		yamlstrict.Field{Key: "port", Fn: func(v *yaml.Node, fp string) {
			if x, ok := d.Int(v, fp); ok {
				if x < 1 || x > 65535 {
					d.At(v, fp, "must be 1-65535, got %d", x)
				}
				s.Port = x
			}
		}},
		yamlstrict.Field{Key: "tls", Fn: func(v *yaml.Node, fp string) {
			s.TLS, _ = d.Str(v, fp)
			if !slices.Contains(SMTPTLS, s.TLS) {
				d.At(v, fp, "want one of %s, got %q", strings.Join(SMTPTLS, ", "), shown(v, s.TLS))
			}
		}},
		yamlstrict.Field{Key: "username", Fn: func(v *yaml.Node, fp string) { s.Username, _ = d.Str(v, fp) }},
		yamlstrict.Field{Key: "password", Fn: func(v *yaml.Node, fp string) { s.Password, _ = d.Str(v, fp) }},
		yamlstrict.Field{Key: "password_file", Fn: func(v *yaml.Node, fp string) { s.PasswordFile, _ = d.Str(v, fp) }},
		yamlstrict.Field{Key: "from", Fn: func(v *yaml.Node, fp string) {
			s.From, _ = d.Str(v, fp)
			if _, err := mail.ParseAddress(s.From); err != nil {
				d.At(v, fp, "want an address (Reports <reports@example.com>), got %q", shown(v, s.From))
			}
		}},
		yamlstrict.Field{Key: "timeout", Fn: func(v *yaml.Node, fp string) { duration(d, v, fp, &s.Timeout) }},
	)
	if s.Host == "" {
		d.At(n, path+".host", "missing: the SMTP server's host name")
	}
	if s.From == "" {
		d.At(n, path+".from", "missing: the sender address (Reports <reports@example.com>)")
	}
	if s.Password != "" && s.PasswordFile != "" {
		d.At(n, path+".password_file", "give password or password_file, not both")
	}
	if s.TLS == "" {
		s.TLS = "starttls"
	}
	if s.Port == 0 {
		s.Port = map[string]int{"starttls": 587, "tls": 465, "none": 25}[s.TLS]
	}
	return s
}

func deliverBlock(d *yamlstrict.Doc, n *yaml.Node, path string) Deliver {
	var dl Deliver
	d.Mapping(n, path,
		yamlstrict.Field{Key: "email_domains", Fn: func(v *yaml.Node, fp string) {
			dl.EmailDomains, _ = d.StrList(v, fp)
			for i, dom := range dl.EmailDomains {
				if dom != "*" && (dom == "" || strings.ContainsAny(dom, "@ /") || !strings.Contains(dom, ".")) {
					d.At(v, yamlstrict.Index(fp, i), "want a domain (example.com) or \"*\", got %q", dom)
				}
				dl.EmailDomains[i] = strings.ToLower(dom)
			}
		}},
		yamlstrict.Field{Key: "webhooks", Fn: func(v *yaml.Node, fp string) {
			dl.Webhooks, _ = d.StrList(v, fp)
			for i, p := range dl.Webhooks {
				u, err := url.Parse(p)
				if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
					d.At(v, yamlstrict.Index(fp, i), "want a URL prefix (https://hooks.example.com/rpt/), got %q", p)
				}
			}
		}},
		yamlstrict.Field{Key: "webhook_secret", Fn: func(v *yaml.Node, fp string) { dl.WebhookSecret, _ = d.Str(v, fp) }},
		yamlstrict.Field{Key: "max_attachment", Fn: func(v *yaml.Node, fp string) {
			if x, ok := d.Int(v, fp); ok {
				if x < 1024 {
					d.At(v, fp, "must be at least 1024 bytes, got %d", x)
				}
				dl.MaxAttachment = x
			}
		}},
	)
	if len(dl.Webhooks) > 0 && dl.WebhookSecret == "" {
		d.At(n, path+".webhook_secret", "missing: webhooks are signed (HMAC-SHA256); give a secret through ${VAR}")
	}
	if dl.MaxAttachment == 0 {
		dl.MaxAttachment = DefaultMaxAttachment
	}
	return dl
}
