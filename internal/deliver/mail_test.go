package deliver

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	sasl "github.com/emersion/go-sasl"
	smtp "github.com/emersion/go-smtp"

	"rpt/internal/config"
)

// tlsSMTP is a go-smtp server with STARTTLS (httptest's certificate for 127.0.0.1) and
// AUTH PLAIN for user rpt with password pw; it records whether each message came over
// TLS after authentication.
type tlsSMTP struct {
	mu       sync.Mutex
	got      []bool // per accepted message: TLS and authenticated
	authSeen []string
}

type tlsSession struct {
	s    *tlsSMTP
	c    *smtp.Conn
	pw   string
	auth bool
}

func (x *tlsSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (x *tlsSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		x.s.mu.Lock()
		x.s.authSeen = append(x.s.authSeen, user)
		x.s.mu.Unlock()
		if user != "rpt" || pass != x.pw {
			return errors.New("invalid credentials")
		}
		x.auth = true
		return nil
	}), nil
}
func (x *tlsSession) Reset()                                    {}
func (x *tlsSession) Logout() error                             { return nil }
func (x *tlsSession) Mail(string, *smtp.MailOptions) error      { return nil }
func (x *tlsSession) Rcpt(to string, _ *smtp.RcptOptions) error { return nil }
func (x *tlsSession) Data(r io.Reader) error {
	_, _ = io.ReadAll(r)
	_, isTLS := x.c.TLSConnectionState()
	x.s.mu.Lock()
	x.s.got = append(x.s.got, isTLS && x.auth)
	x.s.mu.Unlock()
	return nil
}

func startTLSSMTP(t *testing.T, pw string) (*tlsSMTP, int, *tls.Config) {
	t.Helper()
	hs := httptest.NewUnstartedServer(http.NotFoundHandler())
	hs.StartTLS()
	t.Cleanup(hs.Close)
	serverTLS := &tls.Config{Certificates: hs.TLS.Certificates}
	clientTLS := &tls.Config{RootCAs: hs.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs, ServerName: "127.0.0.1"}
	s := &tlsSMTP{}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &tlsSession{s: s, c: c, pw: pw}, nil }))
	srv.Domain = "localhost"
	srv.TLSConfig = serverTLS
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return s, l.Addr().(*net.TCPAddr).Port, clientTLS
}

// STARTTLS is required by default and AUTH runs over it; a wrong password is refused
// with an error that does not contain it.
func TestSMTPMailerStartTLSAuth(t *testing.T) {
	const pw = "s3cret-smtp-pass"
	srv, port, clientTLS := startTLSSMTP(t, pw)
	msg := Message{From: "reports@example.com", To: []string{"accounting@example.com"}, Subject: "Trial Balance Report - 2027-03-08",
		Body: "b", MessageID: "rpt.delivery.1.job.1@example.com", Date: time.Now(), Attachment: "tb.csv", Data: []byte("a,b\n1,2\n")}
	m := &SMTPMailer{Config: config.SMTP{Host: "127.0.0.1", Port: port, TLS: "starttls", Username: "rpt", Password: pw,
		From: "reports@example.com", Timeout: 5 * time.Second}, TLSConfig: clientTLS}
	if err := m.Send(context.Background(), msg); err != nil {
		t.Fatalf("send over STARTTLS with AUTH: %v", err)
	}
	srv.mu.Lock()
	got := append([]bool(nil), srv.got...)
	srv.mu.Unlock()
	if len(got) != 1 || !got[0] {
		t.Fatalf("messages %v: want one, over TLS and authenticated", got)
	}

	m.Config.Password = "wrong-" + pw
	err := m.Send(context.Background(), msg)
	if err == nil {
		t.Fatal("a wrong password was accepted")
	}
	if strings.Contains(err.Error(), pw) {
		t.Fatalf("the password is in the error: %v", err)
	}

	// Without the server's CA, STARTTLS fails: the certificate is checked.
	m.Config.Password = pw
	m.TLSConfig = nil
	if err := m.Send(context.Background(), msg); err == nil {
		t.Fatal("an untrusted certificate was accepted")
	}
}
