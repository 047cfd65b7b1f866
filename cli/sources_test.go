package cli_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"rpt/internal/source/plexws/plexwstest"
)

const (
	wsPassHQ     = "hq-Secret-91c2"
	wsPassAlbion = "alb-Secret-5e07"
)

// plexConfig writes an rpt.yaml whose plex source points at the stand-in, with the
// passwords through variables (never in the file).
func plexConfig(t *testing.T, work string, s *plexwstest.Server, url string) string {
	t.Helper()
	path := filepath.Join(work, "rpt.yaml")
	writeFile(t, path, []byte(fmt.Sprintf(`sources:
  plex:
    driver: plexws
    url: %q
    ca_file: %q
    accounts:
      123681: {user: SouthfieldWs@plex.com, password: "${RPT_TEST_PLEX_HQ}"}
      300758: {user: AlbionWs@plex.com, password: "${RPT_TEST_PLEX_ALBION}"}
  demo: {driver: sqlite, dsn: "sqlite:%s"}
`, url, s.CAFile, filepath.Join(work, "none.db"))))
	return path
}

func workcenters(w http.ResponseWriter, r *http.Request, c plexwstest.Call) {
	if c.Key != 4031 || c.Name != "Workcenter_Get" {
		plexwstest.WriteFault(w, "soap:Server", "unexpected data source")
		return
	}
	a := plexwstest.Begin(w, c, plexwstest.Status{})
	for i := range 3 {
		_ = a.Strings([]string{"Workcenter_Key", "Workcenter_Code"}, fmt.Sprint(i), fmt.Sprintf("WC-%d", i))
	}
	a.End()
}

// `rpt sources test plex` answers per account: one that works, one whose password
// Plex refuses, a wrong URL and a server that does not answer, each with its own
// message and exit code; no password is printed anywhere.
func TestSourcesTestPlex(t *testing.T) {
	work := t.TempDir()
	isolateEnv(t, work)
	t.Setenv("RPT_TEST_PLEX_HQ", wsPassHQ)
	t.Setenv("RPT_TEST_PLEX_ALBION", "wrong-"+wsPassHQ)
	s := plexwstest.New(t, workcenters,
		plexwstest.Account{User: "SouthfieldWs@plex.com", Password: wsPassHQ, PCN: 123681},
		plexwstest.Account{User: "AlbionWs@plex.com", Password: wsPassAlbion, PCN: 300758})
	cfg := plexConfig(t, work, s, s.URL)
	noSecret := func(out ...string) {
		t.Helper()
		for _, o := range out {
			for _, pw := range []string{wsPassHQ, wsPassAlbion} {
				if strings.Contains(o, pw) {
					t.Errorf("password in output: %s", o)
				}
			}
		}
	}

	code, stdout, stderr := runCLI(t, context.Background(), []string{"--config", cfg, "sources", "test", "plex"})
	noSecret(stdout, stderr)
	if code != 2 {
		t.Errorf("exit %d, want 2 (a refused password is configuration to fix)\n%s%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "ok    plex  PCN 123681  SouthfieldWs@plex.com  Workcenter_Get (4031): 3 rows in ") {
		t.Errorf("no ok line for PCN 123681:\n%s", stdout)
	}
	if !strings.Contains(stdout, "FAIL  plex  PCN 300758  AlbionWs@plex.com  refused password or user (Plex answered 401/403)") {
		t.Errorf("no refused line for PCN 300758:\n%s", stdout)
	}
	if !strings.Contains(stderr, `source "plex": 1 of 2 accounts failed (PCN 300758)`) {
		t.Errorf("stderr %q", stderr)
	}
	calls := s.Calls()
	if len(calls) != 1 || calls[0].PCN != 123681 || len(calls[0].Inputs) != 0 {
		t.Errorf("calls %+v, want one Workcenter_Get by the HQ account (Albion's was refused before it)", calls)
	}

	// Both passwords right: exit 0.
	t.Setenv("RPT_TEST_PLEX_ALBION", wsPassAlbion)
	code, stdout, stderr = runCLI(t, context.Background(), []string{"--config", cfg, "sources", "test", "plex"})
	if code != 0 || strings.Count(stdout, "ok    plex  PCN ") != 2 {
		t.Errorf("exit %d\n%s%s", code, stdout, stderr)
	}

	// A wrong URL (the server answers 404).
	cfg = plexConfig(t, work, s, strings.TrimSuffix(s.URL, "Service.asmx")+"Services.asmx")
	code, stdout, stderr = runCLI(t, context.Background(), []string{"--config", cfg, "sources", "test", "plex"})
	if code != 2 || !strings.Contains(stdout, "FAIL  plex  PCN 123681  SouthfieldWs@plex.com  wrong URL: ") {
		t.Errorf("wrong URL: exit %d\n%s%s", code, stdout, stderr)
	}

	// A server that does not answer: a time-out, exit 5 (try again later).
	s.SetHandler(func(w http.ResponseWriter, r *http.Request, c plexwstest.Call) { <-r.Context().Done() })
	cfg = plexConfig(t, work, s, s.URL)
	code, stdout, stderr = runCLI(t, context.Background(), []string{"--config", cfg, "sources", "test", "plex", "--timeout", "300ms"})
	if code != 5 || strings.Count(stdout, "time-out: ") != 2 || !strings.Contains(stdout, "no answer within 300ms") {
		t.Errorf("time-out: exit %d\n%s%s", code, stdout, stderr)
	}
	noSecret(stdout, stderr)

	// Nothing listens at the URL: cannot reach, not a time-out, exit 5.
	cfg = plexConfig(t, work, s, "https://127.0.0.1:1/DataSource/Service.asmx")
	code, stdout, stderr = runCLI(t, context.Background(), []string{"--config", cfg, "sources", "test", "plex", "--timeout", "2s"})
	if code != 5 || strings.Count(stdout, "cannot reach Plex: ") != 2 || !strings.Contains(stdout, "connection refused") {
		t.Errorf("refused connection: exit %d\n%s%s", code, stdout, stderr)
	}

	// list: where each source is and which accounts, without passwords.
	code, stdout, stderr = runCLI(t, context.Background(), []string{"--config", cfg, "sources", "list", "-o", "json"})
	noSecret(stdout, stderr)
	if code != 0 || !strings.Contains(stdout, `"123681:SouthfieldWs@plex.com"`) || !strings.Contains(stdout, `"driver": "plexws"`) ||
		!strings.Contains(stdout, `"built": true`) || !strings.Contains(stdout, `"name": "demo"`) {
		t.Errorf("list: exit %d\n%s%s", code, stdout, stderr)
	}

	// A database source: SELECT 1; a missing demo file says how to make one.
	code, stdout, _ = runCLI(t, context.Background(), []string{"--config", cfg, "sources", "test", "demo"})
	if code != 5 || !strings.Contains(stdout, "FAIL  demo  ") || !strings.Contains(stdout, "rpt demo load") {
		t.Errorf("demo: exit %d\n%s", code, stdout)
	}
	code, _, stderr = runCLI(t, context.Background(), []string{"--config", cfg, "sources", "test", "nope"})
	if code != 2 || !strings.Contains(stderr, `"nope"`) {
		t.Errorf("unknown source: exit %d %s", code, stderr)
	}
}

// `rpt sources test` on a database runs SELECT 1.
func TestSourcesTestSQLite(t *testing.T) {
	work := t.TempDir()
	isolateEnv(t, work)
	code, _, stderr := runCLI(t, context.Background(), []string{"demo", "load", "--periods", "1", "--scale", "1"})
	if code != 0 {
		t.Fatalf("demo load: exit %d %s", code, stderr)
	}
	code, stdout, stderr := runCLI(t, context.Background(), []string{"sources", "test", "warehouse"})
	if code != 0 || !strings.Contains(stdout, "ok    warehouse  sqlite: SELECT 1 in ") {
		t.Errorf("exit %d\n%s%s", code, stdout, stderr)
	}
}
