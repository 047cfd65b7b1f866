// Package plexws is the plexws source driver: Plex's SOAP data-source web service
// (ExecuteDataSource) over HTTPS with Basic auth, one web-service account per PCN, on
// net/http and encoding/xml. A report's datasource: call becomes one HTTP call per PCN
// (and per period when it asks for that), whose rows are decoded token by token as they
// arrive, checked against the definition's ordered, typed columns and concatenated;
// an optional SQLite statement then shapes them (shape.go). Calls are limited per
// source (max_concurrent, min_interval), transport errors and 5xx answers are retried
// inside one call's time limit, and a SOAP fault or a Plex error number is a job
// failure carrying Plex's message. Passwords never appear in an error or a log line.
//
// The package registers itself with internal/source (source.RegisterDriver) when
// imported; cmd/rpt and cli import it.
package plexws

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"rpt/internal/source"
)

// The Plex SOAP contract, as the seed's scripts called it.
const (
	DefaultURL = "https://api.plexonline.com/DataSource/Service.asmx"
	Namespace  = "http://www.plexus-online.com/DataSource"
	SOAPAction = Namespace + "/ExecuteDataSource"
)

// Defaults when the source's configuration leaves a value out.
const (
	DefaultTimeout = 5 * time.Minute // one call, retries included
	DefaultTries   = 3
)

// ErrPlex marks a call that Plex answered with a SOAP fault or an error number: the
// job fails with Plex's message and is not retried (source.ErrRequest).
var ErrPlex = errors.New("plex refused the call")

// ErrAuth marks a refused user or password (HTTP 401/403): configuration, not retried.
var ErrAuth = errors.New("plex refused the account")

// ErrChanged marks a data source whose columns no longer match the definition.
var ErrChanged = errors.New("data source changed")

func init() {
	source.RegisterDriver(source.DriverPlexWS, func(ctx context.Context, name string, cfg source.Config) (source.Source, error) {
		c, err := Open(ctx, name, cfg)
		if err != nil {
			return nil, err
		}
		return c, nil
	})
}

// account is one PCN's web-service user with its password read.
type account struct {
	pcn      int
	user     string
	password string
}

// Client is an opened plexws source. It is safe for concurrent use: every call takes
// one of max_concurrent slots and keeps min_interval after the previous call's start.
type Client struct {
	name     string
	url      string
	accounts map[int]account
	http     *http.Client
	timeout  time.Duration
	tries    int
	slots    chan struct{} // nil: unlimited
	gap      time.Duration

	mu   sync.Mutex
	next time.Time // the earliest start of the next call (min_interval)

	// backoff is the wait before retry n (1-based); tests shorten it.
	backoff func(n int) time.Duration
	// now is the clock for "live from Plex at"; tests may fix it.
	now func() time.Time
}

// Open builds the client of the source called name. It reads password files and the
// CA file and checks the URL, but calls nothing: opening is cheap and never blocks on
// Plex (rpt sources test does the cheap call).
func Open(_ context.Context, name string, cfg source.Config) (*Client, error) {
	u := cfg.URL
	if u == "" {
		u = DefaultURL
	}
	pu, err := url.Parse(u)
	if err != nil || pu.Host == "" || (pu.Scheme != "https" && pu.Scheme != "http") {
		return nil, fmt.Errorf("open source %q (plexws): url %q: want https://host/DataSource/Service.asmx", name, redactURL(u))
	}
	if pu.User != nil {
		return nil, fmt.Errorf("open source %q (plexws): url: put the user and password under accounts:, not in the URL", name)
	}
	if len(cfg.Accounts) == 0 {
		return nil, fmt.Errorf("open source %q (plexws): no accounts: (one web-service user per PCN)", name)
	}
	c := &Client{
		name:     name,
		url:      u,
		accounts: map[int]account{},
		timeout:  cfg.Timeout,
		tries:    DefaultTries,
		gap:      cfg.MinInterval,
		backoff:  defaultBackoff,
		now:      time.Now,
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if cfg.MaxConcurrent > 0 {
		c.slots = make(chan struct{}, cfg.MaxConcurrent)
	}
	for pcn, a := range cfg.Accounts {
		pw := a.Password
		if a.PasswordFile != "" {
			b, err := os.ReadFile(a.PasswordFile)
			if err != nil {
				// The path is configuration, not a secret; the error says only what failed.
				return nil, fmt.Errorf("open source %q (plexws): accounts.%d.password_file: %w", name, pcn, pathError(err))
			}
			pw = strings.TrimRight(string(b), "\r\n")
		}
		if a.User == "" {
			return nil, fmt.Errorf("open source %q (plexws): accounts.%d.user: missing", name, pcn)
		}
		c.accounts[pcn] = account{pcn: pcn, user: a.User, password: pw}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = http.ProxyFromEnvironment
	tr.ResponseHeaderTimeout = 0 // the call's context bounds it
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("open source %q (plexws): ca_file: %w", name, pathError(err))
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("open source %q (plexws): ca_file %s: no PEM certificate in it", name, cfg.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	c.http = &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		// A redirect would resend the Basic credentials elsewhere; the URL is wrong.
		return http.ErrUseLastResponse
	}}
	return c, nil
}

func pathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Path, pe.Err)
	}
	return err
}

func defaultBackoff(n int) time.Duration {
	return min(time.Duration(1<<(n-1))*time.Second, 10*time.Second)
}

// redactURL drops user info from a URL for messages.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		u.User = nil
		return u.String()
	}
	return s
}

func (c *Client) Name() string   { return c.name }
func (c *Client) Driver() string { return source.DriverPlexWS }

// Query refuses SQL: a plexws source runs datasource: calls.
func (c *Client) Query(context.Context, string, map[string]any) (source.Rows, error) {
	return nil, fmt.Errorf("query source %q: %w: a plexws source runs datasource: calls, not SQL", c.name, source.ErrRequest)
}

func (c *Client) Close() error {
	c.http.CloseIdleConnections()
	return nil
}

// PCNs are the PCNs the source has accounts for, sorted.
func (c *Client) PCNs() []int {
	out := make([]int, 0, len(c.accounts))
	for p := range c.accounts {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// User is the web-service user of pcn ("" when none): shown by rpt sources list.
func (c *Client) User(pcn int) string { return c.accounts[pcn].user }

// URL is the endpoint the source calls.
func (c *Client) URL() string { return c.url }

// acquire waits for a slot (max_concurrent) and for the minimum gap after the
// previous call's start (min_interval); release gives the slot back.
func (c *Client) acquire(ctx context.Context) (release func(), err error) {
	if c.slots != nil {
		select {
		case c.slots <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	release = func() {
		if c.slots != nil {
			<-c.slots
		}
	}
	if c.gap > 0 {
		c.mu.Lock()
		now := time.Now()
		start := now
		if c.next.After(now) {
			start = c.next
		}
		c.next = start.Add(c.gap)
		c.mu.Unlock()
		if wait := time.Until(start); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				release()
				return nil, ctx.Err()
			}
		}
	}
	return release, nil
}

// String names the source, so a client printed by mistake shows no account's password.
func (c *Client) String() string { return fmt.Sprintf("plexws source %q (%s)", c.name, c.url) }
