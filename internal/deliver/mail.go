package deliver

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"slices"
	"time"

	gomail "github.com/wneessen/go-mail"

	"rpt/internal/config"
)

// SMTPMailer sends over SMTP with go-mail: STARTTLS (required, the default), implicit
// TLS or none, and PLAIN/LOGIN authentication when a username is given.
type SMTPMailer struct {
	Config config.SMTP
	// TLSConfig, when set, replaces the default (the system's roots, the host's name):
	// a private CA's pool.
	TLSConfig *tls.Config
}

// Send hands m to the server in one connection.
func (s *SMTPMailer) Send(ctx context.Context, m Message) error {
	c := s.Config
	opts := []gomail.Option{gomail.WithPort(c.Port)}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	opts = append(opts, gomail.WithTimeout(timeout))
	switch c.TLS {
	case "tls":
		opts = append(opts, gomail.WithSSL())
	case "none":
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if c.Username != "" {
		pw, err := password(c)
		if err != nil {
			return err
		}
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover), gomail.WithUsername(c.Username), gomail.WithPassword(pw))
	}
	if s.TLSConfig != nil {
		opts = append(opts, gomail.WithTLSConfig(s.TLSConfig))
	}
	client, err := gomail.NewClient(c.Host, opts...)
	if err != nil {
		return fmt.Errorf("smtp %s:%d: %w", c.Host, c.Port, err)
	}
	msg := gomail.NewMsg()
	if err := msg.From(m.From); err != nil {
		return fmt.Errorf("from %q: %w", m.From, err)
	}
	if err := msg.To(slices.Clone(m.To)...); err != nil {
		return fmt.Errorf("to: %w", err)
	}
	msg.Subject(m.Subject)
	msg.SetMessageIDWithValue(m.MessageID)
	msg.SetDateWithValue(m.Date)
	msg.SetBodyString(gomail.TypeTextPlain, m.Body)
	if m.Attachment != "" {
		if err := msg.AttachReader(m.Attachment, bytes.NewReader(m.Data)); err != nil {
			return fmt.Errorf("attach %s: %w", m.Attachment, err)
		}
	}
	if err := client.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("smtp %s:%d: %w", c.Host, c.Port, err)
	}
	return nil
}
