package cli_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"rpt/cli"
	"rpt/internal/source"
)

// selfSigned writes a certificate for 127.0.0.1 and its key as PEM files.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rpt test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "rpt.pem"), filepath.Join(dir, "rpt.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return certFile, keyFile, pool
}

// With api: tls_cert and tls_key, rpt api serves HTTPS only (the API and the web app),
// and the session cookie is Secure; a key that does not load is exit 2 naming the file.
func TestAPIServesTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	cfg := filepath.Join(dir, "rpt.yaml")
	if err := os.WriteFile(cfg, []byte("queue: sqlite:"+filepath.Join(dir, "q.db")+"\napi:\n  tls_cert: rpt.pem\n  tls_key: rpt.key\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var tokOut, tokErr bytes.Buffer
	d := deps(&tokOut, &tokErr)
	if code := cli.Main(context.Background(), []string{"rpt", "--config", cfg, "tokens", "create", "t", "--role", "viewer"}, d); code != 0 {
		t.Fatalf("tokens create: %d %s", code, tokErr.String())
	}
	token := strings.TrimSpace(tokOut.String())

	ctx, cancel := context.WithCancel(context.Background())
	out := &lockedBuffer{}
	done := make(chan int, 1)
	go func() {
		d := cli.Deps{OpenQueue: openQueue, OpenSource: source.Open, Version: "test", Stdout: out, Stderr: out}
		done <- cli.Main(ctx, []string{"rpt", "--config", cfg, "api", "--listen", addr}, d)
	}()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var res *http.Response
	for i := 0; i < 100; i++ {
		if res, err = client.Get("https://" + addr + "/api/v1/healthz"); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("https healthz: %v %v\n%s", res, err, out.String())
	}
	res.Body.Close()
	res, err = client.PostForm("https://"+addr+"/login", url.Values{"token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if ck := res.Header.Get("Set-Cookie"); res.StatusCode != http.StatusSeeOther || !strings.Contains(ck, "Secure") || !strings.Contains(ck, "HttpOnly") {
		t.Errorf("login over TLS: %d, cookie %q: want a Secure, HttpOnly session", res.StatusCode, ck)
	}
	if res, err := (&http.Client{Timeout: 2 * time.Second}).Get("http://" + addr + "/api/v1/healthz"); err == nil {
		res.Body.Close()
		if res.StatusCode == 200 {
			t.Errorf("plain HTTP answered 200 on the TLS port")
		}
	}
	if !strings.Contains(out.String(), "listening on https://"+addr+"/") {
		t.Errorf("banner: %s", out.String())
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("rpt api exit %d: %s", code, out.String())
	}

	// A key that is not the certificate's: refused at start, naming the config.
	if err := os.WriteFile(keyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	var o, e bytes.Buffer
	code := cli.Main(context.Background(), []string{"rpt", "--config", cfg, "api", "--listen", "127.0.0.1:0"}, deps(&o, &e))
	if code != 2 || !strings.Contains(e.String(), cfg+": api: tls_cert "+certFile) {
		t.Errorf("bad key: exit %d, %s", code, e.String())
	}
}
