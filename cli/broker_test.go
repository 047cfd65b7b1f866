package cli

import (
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"rpt/internal/config"
	"rpt/internal/notify"
	"rpt/internal/queue"
	"rpt/internal/queue/sqlite"
)

// rpt server keeps the broker's passwords with the queue; a CLI and an agent on the same
// queue connect in their roles with no credentials configured, and a URL that names a
// user is used as given.
func TestEmbeddedBrokerCredentialsComeFromTheQueue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "rpt.db"), queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	server := &env{d: &Deps{Stderr: io.Discard}, cfg: &config.Config{}, log: quiet}
	stop, err := startEmbeddedBroker(ctx, server, st, "127.0.0.1:0", false, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if notify.URLHasUser(server.cfg.MQTT) {
		t.Fatalf("the broker URL the server shows carries a user: %s", server.cfg.MQTT)
	}
	cli := &env{d: &Deps{Stderr: io.Discard}, cfg: &config.Config{MQTT: server.cfg.MQTT}, log: quiet}
	for _, role := range []string{notify.ClientUser, notify.AgentUser} {
		user, pw := cli.mqttCredentials(ctx, st, role)
		if user != role || pw == "" {
			t.Fatalf("credentials for %s: user %q, password set %v", role, user, pw != "")
		}
	}
	c := cli.notifier(ctx, st)
	if c == nil {
		t.Fatal("no client")
	}
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for !c.Connected() {
		if time.Now().After(deadline) {
			t.Fatal("the CLI did not connect to the embedded broker with the queue's credentials")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Without the queue's credentials (another queue), the broker refuses the CLI.
	other := cli.notifier(ctx, nil)
	defer other.Close()
	time.Sleep(300 * time.Millisecond)
	if other.Connected() {
		t.Error("a client without credentials connected to the embedded broker")
	}
	// A URL with a user wins over what the queue keeps.
	given := &env{d: &Deps{Stderr: io.Discard}, cfg: &config.Config{MQTT: "tcp://someone:pw@127.0.0.1:1"}, log: quiet}
	if user, _ := given.mqttCredentials(ctx, st, notify.ClientUser); user != "" {
		t.Errorf("URL with a user: stored credentials used (%q)", user)
	}
}

// rpt server where another broker holds the default address (a Mosquitto on the same
// machine) takes a free port and names it; the same address given with --broker is
// refused with a message about the broker, class unavailable (exit 5).
func TestEmbeddedBrokerNextToAnotherBroker(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "rpt.db"), queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	var said strings.Builder
	server := &env{d: &Deps{Stderr: &said}, cfg: &config.Config{}, log: quiet}
	stop, err := startEmbeddedBroker(ctx, server, st, addr, true, quiet)
	if err != nil {
		t.Fatalf("default address taken: %v, want a free port instead", err)
	}
	defer stop()
	if server.cfg.MQTT == "" || strings.Contains(server.cfg.MQTT, addr) {
		t.Errorf("broker URL %q, want one on another port than %s", server.cfg.MQTT, addr)
	}
	if !strings.Contains(said.String(), addr+" is taken") || !strings.Contains(said.String(), "--mqtt "+server.cfg.MQTT) {
		t.Errorf("message %q does not name the taken address and the --mqtt to use", said.String())
	}

	explicit := &env{d: &Deps{Stderr: io.Discard}, cfg: &config.Config{}, log: quiet}
	_, err = startEmbeddedBroker(ctx, explicit, st, addr, false, quiet)
	if err == nil || !strings.Contains(err.Error(), addr+" is already in use") || strings.Contains(err.Error(), "queue") {
		t.Errorf("explicit address taken: err = %v, want a refusal naming the broker's address, not the queue", err)
	}
	if got := ExitCode(err); got != ExitUnreachable {
		t.Errorf("exit code %d, want %d", got, ExitUnreachable)
	}
}
