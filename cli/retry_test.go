package cli_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"rpt/cli"
)

// A queue host that accepts connections and then never answers (a hung server, a
// half-open firewall) cannot hold a command past --retry-for: it exits 5 saying so.
func TestQueueThatNeverAnswers(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var held []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held = append(held, c) // never written to: no MySQL greeting
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	code, _, stderr := runCLI(t, ctx, []string{"--queue", "mysql://rpt:s3cret@" + l.Addr().String() + "/rpt", "--retry-for", "2s", "jobs", "list"})
	took := time.Since(start)
	if code != cli.ExitUnreachable {
		t.Errorf("exit %d, want %d; stderr:\n%s", code, cli.ExitUnreachable, stderr)
	}
	if !strings.Contains(stderr, "does not answer") || !strings.Contains(stderr, "retried for") || strings.Contains(stderr, "s3cret") {
		t.Errorf("stderr does not say the queue does not answer and for how long it tried, or shows the password:\n%s", stderr)
	}
	// A deadline, not a speed: the read timeout alone would be a minute.
	if took > 20*time.Second {
		t.Errorf("took %v with --retry-for 2s", took)
	}
}
