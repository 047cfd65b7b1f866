package config

import (
	"strings"
	"testing"
)

func TestSMTPAndDeliver(t *testing.T) {
	env := map[string]string{"SMTP_PW": "hunter2-secret", "HOOK": "hook-secret"}
	c, err := Parse("rpt.yaml", []byte(`smtp:
  host: smtp.example.com
  username: rpt
  password: ${SMTP_PW}
  from: "Reports <reports@example.com>"
deliver:
  email_domains: [Example.com]
  webhooks: [https://hooks.example.com/rpt/]
  webhook_secret: ${HOOK}
`), func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.SMTP == nil || c.SMTP.Port != 587 || c.SMTP.TLS != "starttls" || c.SMTP.Password != "hunter2-secret" {
		t.Fatalf("smtp %+v", c.SMTP)
	}
	if c.Deliver.EmailDomains[0] != "example.com" || c.Deliver.WebhookSecret != "hook-secret" || c.Deliver.MaxAttachment != DefaultMaxAttachment {
		t.Fatalf("deliver %+v", c.Deliver)
	}

	_, err = Parse("rpt.yaml", []byte(`smtp:
  host: smtp.example.com
  tls: maybe
  port: 70000
  password: ${SMTP_PW}
  password_file: /run/secrets/smtp
  from: not an address ${SMTP_PW}
deliver:
  email_domains: ["@example.com"]
  webhooks: [ftp://x]
`), func(k string) string { return env[k] })
	if err == nil {
		t.Fatal("bad smtp: accepted")
	}
	msg := err.Error()
	for _, want := range []string{
		"rpt.yaml:3:8: smtp.tls: want one of starttls, tls, none",
		"rpt.yaml:4:9: smtp.port: must be 1-65535",
		"smtp.password_file: give password or password_file, not both",
		"smtp.from: want an address",
		"deliver.email_domains[0]: want a domain",
		"deliver.webhooks[0]: want a URL prefix",
		"deliver.webhook_secret: missing",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("errors lack %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "hunter2") {
		t.Errorf("the password is in an error:\n%s", msg)
	}
}
