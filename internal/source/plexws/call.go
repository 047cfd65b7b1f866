package plexws

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"rpt/internal/source"
)

// input is one InputParameter of a call, its value already written as Plex reads it.
type input struct{ name, value string }

// envelope is the SOAP 1.1 request of ExecuteDataSource, in the shape the seed's
// scripts sent (soapenv + dat prefixes, Required/Output false on every input).
func envelope(key int, name string, inputs []input) []byte {
	var b bytes.Buffer
	esc := func(s string) { _ = xml.EscapeText(&b, []byte(s)) }
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?>` +
		`<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:dat="` + Namespace + `">` +
		`<soapenv:Header/><soapenv:Body><dat:ExecuteDataSource><dat:ExecuteDataSourceRequest>`)
	b.WriteString(`<dat:DataSourceKey>` + strconv.Itoa(key) + `</dat:DataSourceKey><dat:InputParameters>`)
	for _, in := range inputs {
		b.WriteString(`<dat:InputParameter><dat:Value>`)
		esc(in.value)
		b.WriteString(`</dat:Value><dat:Name>`)
		esc(in.name)
		b.WriteString(`</dat:Name><dat:Required>false</dat:Required><dat:Output>false</dat:Output></dat:InputParameter>`)
	}
	b.WriteString(`</dat:InputParameters><dat:DataSourceName>`)
	esc(name)
	b.WriteString(`</dat:DataSourceName></dat:ExecuteDataSourceRequest></dat:ExecuteDataSource></soapenv:Body></soapenv:Envelope>`)
	return b.Bytes()
}

// response is a 200 answer being read: the body, and what ends the call (its time
// limit, its concurrency slot) when the body has been read or the rows are closed.
type response struct {
	body  io.ReadCloser
	tries int
	end   func()
}

// maxErrorBody bounds how much of a non-200 answer is read for a SOAP fault.
const maxErrorBody = 1 << 20

// call posts one ExecuteDataSource request with acct's credentials. Transport errors
// and 5xx answers without a SOAP fault are retried (with a growing pause) until the
// call's time limit; what is returned is a 200 answer whose body the caller streams and
// must end. ctx's cancel ends the HTTP request at any point, body included.
func (c *Client) call(ctx context.Context, acct account, what string, body []byte) (*response, error) {
	cctx, cancel := context.WithTimeout(ctx, c.timeout)
	release, err := c.acquire(cctx)
	if err != nil {
		cancel()
		return nil, c.ctxErr(ctx, cctx, what, 0, err)
	}
	end := func() { release(); cancel() }
	var last error
	for try := 1; ; try++ {
		req, err := http.NewRequestWithContext(cctx, http.MethodPost, c.url, bytes.NewReader(body))
		if err != nil {
			end()
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		req.Header.Set("Content-Type", "text/xml; charset=utf-8")
		req.Header.Set("SOAPAction", SOAPAction)
		req.SetBasicAuth(acct.user, acct.password)
		resp, err := c.http.Do(req)
		switch {
		case err != nil:
			if cctx.Err() != nil {
				end()
				return nil, c.ctxErr(ctx, cctx, what, try, err)
			}
			var cve *tls.CertificateVerificationError
			if errors.As(err, &cve) {
				// Retrying will not make the certificate trusted.
				end()
				return nil, fmt.Errorf("%s: %w: the server's certificate is not trusted (a corporate proxy's CA goes in ca_file:): %w", what, source.ErrRequest, err)
			}
			last = fmt.Errorf("%w: %s: %w", source.ErrUnavailable, what, err)
		case resp.StatusCode == http.StatusOK:
			return &response{body: resp.Body, tries: try, end: end}, nil
		case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
			drain(resp)
			end()
			return nil, fmt.Errorf("%s: %w: %w: user %q for PCN %d (HTTP %d): check the user and its password",
				what, source.ErrRequest, ErrAuth, acct.user, acct.pcn, resp.StatusCode)
		case resp.StatusCode >= 500:
			b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
			drain(resp)
			if f, ok := faultOf(b); ok {
				end()
				return nil, fmt.Errorf("%s: %w: %w: %s", what, source.ErrRequest, ErrPlex, f)
			}
			last = fmt.Errorf("%w: %s: HTTP %s", source.ErrUnavailable, what, resp.Status)
		case resp.StatusCode == http.StatusNotFound || (resp.StatusCode >= 300 && resp.StatusCode < 400):
			drain(resp)
			end()
			return nil, fmt.Errorf("%s: %w: HTTP %s from %s: is the url right? (want the Plex endpoint, e.g. %s)",
				what, source.ErrRequest, resp.Status, c.url, DefaultURL)
		default:
			drain(resp)
			end()
			return nil, fmt.Errorf("%s: %w: HTTP %s", what, source.ErrRequest, resp.Status)
		}
		if try >= c.tries {
			end()
			return nil, fmt.Errorf("%w (gave up after %d tries)", last, try)
		}
		wait := c.backoff(try)
		if dl, ok := cctx.Deadline(); ok && time.Until(dl) < wait {
			end()
			return nil, fmt.Errorf("%w (gave up after %d tries: the call's time limit leaves no time for another)", last, try)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-cctx.Done():
			t.Stop()
			end()
			return nil, c.ctxErr(ctx, cctx, what, try, last)
		}
	}
}

// ctxErr is the error of a call whose context ended: the caller's cancel (ctx's
// error, so the job is cancelled), or the call's own time limit (unavailable: the job
// may be retried).
func (c *Client) ctxErr(ctx, cctx context.Context, what string, tries int, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", what, ctx.Err())
	}
	if errors.Is(cctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w: %s: no complete answer within the call's time limit %s (%d tries)", source.ErrUnavailable, what, c.timeout, tries)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	_ = resp.Body.Close()
}

// faultOf reads a SOAP fault's message out of an error answer.
func faultOf(b []byte) (string, bool) {
	d := xml.NewDecoder(bytes.NewReader(b))
	inFault := false
	var code, text string
	for {
		tok, err := d.Token()
		if err != nil {
			break
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		switch se.Name.Local {
		case "Fault":
			inFault = true
		case "faultcode", "faultstring", "Text", "Value":
			if !inFault {
				continue
			}
			var s string
			if err := d.DecodeElement(&s, &se); err != nil {
				break
			}
			if se.Name.Local == "faultcode" || se.Name.Local == "Value" {
				if code == "" {
					code = s
				}
			} else if text == "" {
				text = s
			}
		}
	}
	if !inFault {
		return "", false
	}
	msg := "SOAP fault"
	if code != "" {
		msg += " " + code
	}
	if text != "" {
		msg += ": " + text
	}
	return msg, true
}
