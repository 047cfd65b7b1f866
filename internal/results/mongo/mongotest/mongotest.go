// Package mongotest starts a MongoDB-compatible server for tests: FerretDB v1 embedded
// in the test process (its Go package, with the SQLite backend in a temporary folder,
// on a random loopback port). No MongoDB server runs where rpt is built, and
// FerretDB's go-installed binary panics, so it runs in-process. Only tests import this
// package, so the rpt binary does not link FerretDB.
package mongotest

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// URI starts an embedded FerretDB for the test and returns a mongodb:// URI naming a
// database of its own (each call a new server and a new database); the server stops
// when the test ends. dbName may be empty (then "rpt").
func URI(tb testing.TB, dbName string) string {
	tb.Helper()
	srv := Start(tb)
	if dbName == "" {
		dbName = "rpt"
	}
	return srv.URI(dbName)
}

// Server is one embedded FerretDB.
type Server struct {
	host string
	stop context.CancelFunc
	done chan struct{}
}

// URI is a mongodb:// URI of database db on the server.
func (s *Server) URI(db string) string {
	return (&url.URL{Scheme: "mongodb", Host: s.host, Path: "/" + db}).String()
}

// Host is the server's host:port.
func (s *Server) Host() string { return s.host }

// Stop stops the server (an outage); the test's cleanup stops it too.
func (s *Server) Stop() {
	s.stop()
	<-s.done
}

// Start starts an embedded FerretDB for the test; it stops when the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	dir := tb.TempDir()
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: "127.0.0.1:0"},
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		Handler:   "sqlite",
		SQLiteURL: "file:" + dir + "/",
	})
	if err != nil {
		tb.Fatalf("start embedded FerretDB: %v", err)
	}
	u, err := url.Parse(f.MongoDBURI())
	if err != nil {
		tb.Fatalf("embedded FerretDB URI %q: %v", f.MongoDBURI(), err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{host: u.Host, stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		_ = f.Run(ctx)
	}()
	tb.Cleanup(func() {
		cancel()
		<-s.done
	})
	// Run listens in its own goroutine: wait until the port answers.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.host, time.Second)
		if err == nil {
			c.Close()
			return s
		}
		if time.Now().After(deadline) || !strings.Contains(err.Error(), "refused") {
			tb.Fatalf("embedded FerretDB at %s does not answer: %v", s.host, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
