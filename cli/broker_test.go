package cli

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
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
	stop, err := startEmbeddedBroker(ctx, server, st, "127.0.0.1:0", quiet)
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
