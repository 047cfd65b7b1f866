package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const full = `queue: mysql://rpt:${RPT_DB_PASSWORD}@reports31:30031/rpt     # or sqlite:/var/lib/rpt/rpt.db
mqtt: tcp://reports31:30231
timezone: America/Indiana/Indianapolis
reports: [./reports, /abs/reports]
sources:
  warehouse: {driver: mysql, dsn: "mysql://reader:${WH_PASSWORD}@reports31:30031/plex", max_concurrent: 8}
  plex:      {driver: mysql, dsn: "mysql://${PLEX_WS_USER}:${PLEX_WS_PASSWORD}@plex-replica:3306/plex", max_concurrent: 2}
  azure-dw:  {driver: sqlserver, dsn: "${AZURE_DW_DSN}"}
  demo:      {driver: sqlite, dsn: "sqlite:demo.db"}
retention: {results: 7d, jobs: 1d12h}
agent:
  name: reports31
  concurrency: 4
  labels: {plant: albion, zone: "${ZONE:-east}"}
  lease: 30s
  heartbeat: 10s
legacy_topic: reports31-report-complete
results: queue
`

var env = map[string]string{
	"RPT_DB_PASSWORD":  "s3cret-db",
	"WH_PASSWORD":      "s3cret-wh",
	"PLEX_WS_USER":     "wsuser",
	"PLEX_WS_PASSWORD": "s3cret-ws",
	"AZURE_DW_DSN":     "sqlserver://u:s3cret-az@azure/db",
}

func getenv(k string) string { return env[k] }

func TestParseFull(t *testing.T) {
	t.Parallel()
	c, err := Parse(filepath.Join("etc", "rpt", "rpt.yaml"), []byte(full), getenv)
	if err != nil {
		t.Fatal(err)
	}
	if c.Queue != "mysql://rpt:s3cret-db@reports31:30031/rpt" || c.MQTT != "tcp://reports31:30231" {
		t.Errorf("queue %q mqtt %q", c.Queue, c.MQTT)
	}
	if c.Location().String() != "America/Indiana/Indianapolis" {
		t.Errorf("location = %v", c.Location())
	}
	if want := []string{filepath.Join("etc", "rpt", "reports"), "/abs/reports"}; strings.Join(c.Reports, "|") != strings.Join(want, "|") {
		t.Errorf("reports = %v, want %v", c.Reports, want)
	}
	if len(c.Sources) != 4 {
		t.Fatalf("sources = %v", c.Sources)
	}
	if s := c.Sources["warehouse"]; s.Driver != "mysql" || s.MaxConcurrent != 8 || !strings.Contains(s.DSN, "s3cret-wh") {
		t.Errorf("warehouse = %+v", s)
	}
	if s := c.Sources["plex"]; s.Driver != "mysql" || s.DSN != "mysql://wsuser:s3cret-ws@plex-replica:3306/plex" || s.MaxConcurrent != 2 {
		t.Errorf("plex = %+v", s)
	}
	if c.Sources["azure-dw"].DSN != env["AZURE_DW_DSN"] || c.Sources["demo"].DSN != "sqlite:demo.db" {
		t.Errorf("sources = %+v", c.Sources)
	}
	if c.Retention.Results != 7*24*time.Hour || c.Retention.Jobs != 36*time.Hour {
		t.Errorf("retention = %+v", c.Retention)
	}
	if a := c.Agent; a.Name != "reports31" || a.Concurrency != 4 || a.Labels["plant"] != "albion" || a.Labels["zone"] != "east" ||
		a.Lease != 30*time.Second || a.Heartbeat != 10*time.Second {
		t.Errorf("agent = %+v", a)
	}
	if c.LegacyTopic != "reports31-report-complete" {
		t.Errorf("legacy_topic = %q", c.LegacyTopic)
	}
	if c.Results != "queue" {
		t.Errorf("results = %q", c.Results)
	}
}

func TestParseDefaults(t *testing.T) {
	t.Parallel()
	for _, src := range []string{"", "# only a comment\n", "~\n", "retention:\n"} {
		c, err := Parse("rpt.yaml", []byte(src), nil)
		if err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		if c.Retention != Default().Retention || c.Retention.Results != 7*24*time.Hour || c.Retention.Jobs != 90*24*time.Hour || c.Location() != time.Local {
			t.Errorf("%q: defaults = %+v", src, c)
		}
	}
}

func TestExpand(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want, err string }{
		{"plain", "plain", ""},
		{"a${RPT_DB_PASSWORD}b", "as3cret-dbb", ""},
		{"$$5 and $$${PLEX_WS_USER}", "$5 and $wsuser", ""},
		{"cost $5", "cost $5", ""},
		{"${UNSET:-fallback}", "fallback", ""},
		{"${UNSET:-}", "", ""},
		{"${UNSET}", "", "environment variable UNSET is not set"},
		{"${OPEN", "", "unclosed ${"},
		{"${1BAD}", "", "bad variable name"},
		{"trailing $", "trailing $", ""},
	}
	for _, tt := range tests {
		got, err := expand(tt.in, getenv)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("expand(%q) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("expand(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestParseDuration(t *testing.T) {
	t.Parallel()
	good := map[string]time.Duration{"7d": 7 * 24 * time.Hour, "90d": 90 * 24 * time.Hour, "1d12h": 36 * time.Hour, "30m": 30 * time.Minute, "0d": 0}
	for in, want := range good {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "7days", "1d-5h", "seven", "7 d"} {
		if _, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q): no error", in)
		}
	}
}

func TestParseBad(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, yaml string
		at         string // line:column, or a line alone where no column applies
		field, msg string
	}{
		{"unknown key", "queue: sqlite:x.db\nqueu: y\n", "2:1", "queu", `unknown key "queu" (want queue, mqtt,`},
		{"unset variable", "queue: sqlite:x.db\nmqtt: tcp://${BROKER_HOST}:1883\n", "2:7", "mqtt", "environment variable BROKER_HOST is not set"},
		{"bad timezone", "timezone: America/Indianapolis/Nowhere\n", "1:11", "timezone", `unknown time zone "America/Indianapolis/Nowhere"`},
		{"bad queue dsn", "queue: postgres://x\n", "1:8", "queue", "want sqlite:PATH or mysql://"},
		{"sqlserver queue", "queue: sqlserver://x\n", "1:8", "queue", "the queue must be mysql://"},
		{"sqlite queue without path", "queue: \"sqlite:\"\n", "1:8", "queue", "no path"},
		{"unknown driver", "sources:\n  w: {driver: postgres, dsn: x}\n", "2:15", "sources.w.driver", `unknown driver "postgres" (want sqlite, mysql, sqlserver, plexws, odbc)`},
		{"missing driver", "sources:\n  w: {dsn: x}\n", "2:6", "sources.w.driver", "missing"},
		{"source not a mapping", "sources:\n  w: \"mysql://u:pw@h/db\"\n", "2:6", "sources.w", "want a mapping (driver: ..., dsn: ...), got a scalar"},
		{"source with nothing", "sources:\n  w:\n", "2:5", "sources.w", "want a mapping (driver: ..., dsn: ...), got null"},
		{"sqlite source without dsn", "sources:\n  demo: {driver: sqlite}\n", "2:9", "sources.demo.dsn", "missing"},
		{"sqlite source with a mysql dsn", "sources:\n  demo: {driver: sqlite, dsn: \"mysql://h/db\"}\n", "2:31", "sources.demo.dsn", "is not sqlite:PATH"},
		{"mysql source bad dsn", "sources:\n  wh:\n    driver: mysql\n    dsn: \"mysql:///nohost\"\n", "4:10", "sources.wh.dsn", "has no host"},
		{"plexws without accounts", "sources:\n  plex: {driver: plexws, url: \"https://x\"}\n", "2:9", "sources.plex.accounts", "missing (one web-service account per PCN"},
		{"plexws plain password", "sources:\n  plex:\n    driver: plexws\n    accounts:\n      123681: {user: u, password: hunter2}\n", "5:25", "sources.plex.accounts.123681.password", "write the password as ${VAR}"},
		{"plexws bad pcn", "sources:\n  plex:\n    driver: plexws\n    accounts:\n      Albion: {user: u, password_file: /run/pw}\n", "5:7", "sources.plex.accounts.Albion", `bad PCN "Albion"`},
		{"plexws two passwords", "sources:\n  plex:\n    driver: plexws\n    accounts:\n      123681: {user: u, password: \"${PW}\", password_file: /run/pw}\n", "5:44", "sources.plex.accounts.123681.password_file", "not both"},
		{"plexws no password", "sources:\n  plex:\n    driver: plexws\n    accounts:\n      123681: {user: u}\n", "5:15", "sources.plex.accounts.123681.password", "missing (password: ${VAR}"},
		{"plexws no user", "sources:\n  plex:\n    driver: plexws\n    accounts:\n      123681: {password_file: /run/pw}\n", "5:15", "sources.plex.accounts.123681.user", "missing (the web-service user of PCN 123681)"},
		{"plexws top-level user", "sources:\n  plex:\n    driver: plexws\n    user: me\n    accounts: {1: {user: u, password_file: /p}}\n", "3:5", "sources.plex.user", "one user per PCN"},
		{"plexws bad url", "sources:\n  plex: {driver: plexws, url: \"ftp://h/x\", accounts: {1: {user: u, password_file: /p}}}\n", "2:31", "sources.plex.url", `bad url "ftp://h/x"`},
		{"plexws dsn", "sources:\n  plex: {driver: plexws, dsn: x, accounts: {1: {user: u, password_file: /p}}}\n", "2:31", "sources.plex.dsn", "a plexws source has no dsn"},
		{"plexws bad min_interval", "sources:\n  plex: {driver: plexws, min_interval: soon, accounts: {1: {user: u, password_file: /p}}}\n", "2:40", "sources.plex.min_interval", `bad duration "soon"`},
		{"plexws zero timeout", "sources:\n  plex: {driver: plexws, timeout: 0s, accounts: {1: {user: u, password_file: /p}}}\n", "2:35", "sources.plex.timeout", `bad duration "0s"`},
		{"accounts on mysql", "sources:\n  w: {driver: mysql, dsn: \"mysql://h/db\", accounts: {1: {user: u, password_file: /p}}}\n", "2:53", "sources.w.accounts", "only a plexws source takes accounts"},
		{"odbc no data source", "sources:\n  o:\n    driver: odbc\n    dsn: \"Server=plex;PWD={s3cret}\"\n", "4:10", "sources.o.dsn", `ODBC connection string names no data source: want DSN=NAME`},
		{"odbc unclosed brace", "sources:\n  o:\n    driver: odbc\n    dsn: \"DSN=Plex;PWD={s3cret\"\n", "4:10", "sources.o.dsn", `the value of PWD opens '{' and never closes it`},
		{"odbc bad dialect", "sources:\n  o: {driver: odbc, dsn: DSN=Plex, dialect: tsql}\n", "2:45", "sources.o.dialect", `unknown dialect "tsql" (want sqlserver or mysql`},
		{"dialect not odbc", "sources:\n  o: {driver: mysql, dsn: \"mysql://h/db\", dialect: mysql}\n", "2:52", "sources.o.dialect", `only an odbc source takes a dialect`},
		{"unknown source key", "sources:\n  w:\n    driver: mysql\n    dns: mysql://h/db\n", "4:5", "sources.w.dns", `unknown key "dns"`},
		{"negative max_concurrent", "sources:\n  w: {driver: sqlserver, dsn: x, max_concurrent: -1}\n", "2:50", "sources.w.max_concurrent", "must be 0"},
		{"bad source name", "sources:\n  \"my source\": {driver: sqlserver, dsn: x}\n", "2:3", "sources.my source", "bad source name"},
		{"duplicate source", "sources:\n  w: {driver: sqlserver, dsn: x}\n  w: {driver: sqlserver, dsn: y}\n", "3:3", "sources.w", "duplicate source (first at line 2)"},
		{"bad retention", "retention:\n  results: 7 days\n", "2:12", "retention.results", `bad duration "7 days"`},
		{"zero retention", "retention: {jobs: 0d}\n", "1:19", "retention.jobs", "must be positive"},
		{"unknown retention key", "retention: {events: 7d}\n", "1:13", "retention.events", "unknown key"},
		{"agent concurrency zero", "agent: {concurrency: 0}\n", "1:22", "agent.concurrency", "must be 1-1000"},
		{"agent concurrency text", "agent: {concurrency: many}\n", "1:22", "agent.concurrency", `want an integer, got "many"`},
		{"agent concurrency list", "agent: {concurrency: [1]}\n", "1:22", "agent.concurrency", "want an integer, got a list"},
		{"heartbeat too slow", "agent:\n  lease: 30s\n  heartbeat: 20s\n", "2:10", "agent.heartbeat", "at most half the lease"},
		{"bad label", "agent:\n  labels: {\"bad label\": x}\n", "2:12", "agent.labels.bad label", "bad label name"},
		{"wildcard legacy topic", "legacy_topic: \"node/#\"\n", "1:15", "legacy_topic", "bad MQTT topic"},
		{"api cert without key", "api:\n  tls_cert: cert.pem\n", "2:3", "api", "tls_cert and tls_key go together"},
		{"api unknown key", "api: {listen: \":8443\"}\n", "1:7", "api.listen", `unknown key "listen"`},
		{"bad mqtt", "mqtt: reports31:1883\n", "1:7", "mqtt", "bad broker URL"},
		{"unknown results store", "queue: sqlite:x.db\nresults: mongo\n", "2:10", "results", `unknown results store "mongo" (want queue or a mongodb:// URI)`},
		{"results typo", "results: queeu\n", "1:10", "results", "did you mean `queue`?"},
		{"bad mongodb port", "results: mongodb://rpt:s3cret-mongo@h:99999/rpt\n", "1:10", "results", `bad MongoDB URI "mongodb://rpt:xxxxx@h:99999/rpt"`},
		{"mongodb name too long", "results: mongodb://" + strings.Repeat("h", 60) + ":1/rpt\n", "1:10", "results", "jobs record at most 64"},
		{"results_read queue", "results_read: [queue]\n", "1:16", "results_read[0]", "the queue database is always read"},
		{"results_read twice", "results_read:\n  - mongodb://a:1/x\n  - mongodb://u:p@A:1/x?authSource=admin\n", "3:5", "results_read[1]", "the store mongodb://a:1/x is listed twice (first as item 0)"},
		{"results_read bad", "results_read:\n  - http://a/x\n", "2:5", "results_read[0]", "unknown results store"},
		{"mongodb password from env", "results: \"mongodb://rpt:${RPT_DB_PASSWORD}@h:0/x\"\n", "1:10", "results", "port must be in the range"},
		{"results not a string", "results: {store: queue}\n", "1:10", "results", "want a string"},
		{"reports not a list", "reports: {a: b}\n", "1:10", "reports", "want a list"},
		{"duplicate key", "queue: sqlite:a.db\nqueue: sqlite:b.db\n", "2:1", "queue", "duplicate key (first at line 1)"},
		{"tabs", "agent:\n\tname: x\n", "2:1", "", "tab in indentation"},
		{"binary", "queue: \x00\x01", "1", "", "binary content"},
		{"syntax", "queue: [x\n", "", "", "YAML:"},
		{"top-level list", "- queue\n", "1:1", "", "want a mapping"},
		{"aliases", "queue: &q sqlite:a.db\nmqtt: *q\n", "1:8", "", "anchors and aliases"},
		{"two documents", "queue: sqlite:a.db\n---\nqueue: sqlite:b.db\n", "", "", "more than one YAML document"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse("rpt.yaml", []byte(tt.yaml), getenv)
			if err == nil {
				t.Fatalf("no error; parsed %+v", c)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("not ErrInvalid: %v", err)
			}
			want := "rpt.yaml:"
			if tt.at != "" {
				want = "rpt.yaml:" + tt.at + ": "
			}
			if tt.field != "" {
				want += tt.field + ": "
			}
			if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not contain %q and %q", err, want, tt.msg)
			}
		})
	}
}

// TestSecretsNotInErrors checks that no error shows an expanded secret.
func TestSecretsNotInErrors(t *testing.T) {
	t.Parallel()
	secretEnv := func(k string) string { return "hunter2-" + k }
	for _, src := range []string{
		"queue: mysql://rpt:${PW}@/rpt\n",
		"queue: \"mysql://rpt:${PW}@host:3306/rpt?timeout=soon\"\n",
		"queue: mysql://rpt:hunter2-PW@/rpt\n",
		"queue: pg://rpt:${PW}@host/rpt\n",
		"mqtt: \"x://u:${PW}@\"\n",
		"sources:\n  w: {driver: mysql, dsn: \"mysql://u:${PW}@\"}\n",
		"sources:\n  w: {driver: mysql, dsn: \"http://u:${PW}@h/db\"}\n",
		"sources:\n  w: {driver: sqlite, dsn: \"mysql://u:${PW}@h/db\"}\n",
		"sources:\n  w: {driver: plexws, url: \"ftp://u:${PW}@h/x\", password: \"${PW}\"}\n",
		"sources:\n  w: {driver: nope, dsn: \"${PW}\", password: \"${PW}\"}\n",
		"sources:\n  w: {driver: mysql, dsn: \"mysql://u:${PW}@h:3306/db\", max_concurrent: \"${PW}\"}\n",
		"results: \"mongodb://rpt:${PW}@h:99999/rpt\"\n",
		"results: \"mongodb://rpt:${PW}@h/rpt?authMechanism=NOPE\"\n",
		"results: \"mongodbx://rpt:${PW}@h/rpt\"\n",
		"results: \"mongodb://rpt:hunter2-PW@h:99999/rpt\"\n",
		"results_read: [\"mongodb://rpt:${PW}@h:99999/rpt\"]\n",
		"results: \"mongodb://rpt:${PW}@" + strings.Repeat("h", 70) + "/rpt\"\n",
		"sources:\n  w: {driver: odbc, dsn: \"Server=plex;UID=rpt;PWD=${PW}\"}\n",
		"sources:\n  w: {driver: odbc, dsn: \"DSN=Plex;PWD={${PW}\"}\n",
		"sources:\n  w: {driver: odbc, dsn: \"DSN=Plex;PWD=${PW}}\"}\n",
		"sources:\n  w: {driver: odbc, dsn: \"DSN=Plex;PWD=hunter2-PW;x\"}\n",
		"sources:\n  w: {driver: odbc, dsn: \"DSN=Plex;PWD=${PW}\", dialect: \"${PW}\"}\n",
	} {
		_, err := Parse("rpt.yaml", []byte(src), secretEnv)
		if err == nil {
			t.Errorf("%q: no error", src)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%q: secret in error %q", src, err)
		}
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "rpt.yaml")
	if err := os.WriteFile(path, []byte("queue: sqlite:rpt.db\ntimezone: UTC\nreports: ./defs\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.File != path || c.Queue != "sqlite:rpt.db" || c.Location() != time.UTC || c.Reports[0] != filepath.Join(filepath.Dir(path), "defs") {
		t.Errorf("config = %+v", c)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("no error for a missing file")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(full))
	f.Add([]byte("queue: ${X:-sqlite:a.db}\nagent: {lease: 1d, heartbeat: 1h}\n"))
	f.Add([]byte("sources:\n  a: {driver: plexws, url: \"https://h\"}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data, getenv)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error not ErrInvalid: %v", err)
			}
			return
		}
		_ = c.Location()
	})
}

func TestParsePlexWS(t *testing.T) {
	t.Parallel()
	src := `sources:
  plex:
    driver: plexws
    url: https://test.api.plexonline.com/DataSource/Service.asmx
    max_concurrent: 2
    min_interval: 500ms
    timeout: 2m
    ca_file: /etc/ssl/corp-ca.pem
    accounts:
      123681: {user: SouthfieldWs@plex.com, password: "${PLEX_123681}"}
      300758: {user: AlbionWs@plex.com, password_file: /run/secrets/plex-300758}
`
	env := func(k string) string { return map[string]string{"PLEX_123681": "s3cret-HQ"}[k] }
	c, err := Parse("rpt.yaml", []byte(src), env)
	if err != nil {
		t.Fatal(err)
	}
	sc := c.Sources["plex"]
	if sc.Driver != "plexws" || sc.MaxConcurrent != 2 || sc.MinInterval != 500*time.Millisecond || sc.Timeout != 2*time.Minute || sc.CAFile != "/etc/ssl/corp-ca.pem" {
		t.Errorf("source %+v", sc)
	}
	if a := sc.Accounts[123681]; a.User != "SouthfieldWs@plex.com" || a.Password != "s3cret-HQ" || a.PasswordFile != "" {
		t.Errorf("account 123681 = %+v", a)
	}
	if a := sc.Accounts[300758]; a.User != "AlbionWs@plex.com" || a.Password != "" || a.PasswordFile != "/run/secrets/plex-300758" {
		t.Errorf("account 300758 = %+v", a)
	}
	// An unset variable is named, its (empty) value is not shown.
	_, err = Parse("rpt.yaml", []byte(strings.Replace(src, "PLEX_123681", "PLEX_UNSET", 1)), env)
	if err == nil || !strings.Contains(err.Error(), "rpt.yaml:10:") || !strings.Contains(err.Error(), "PLEX_UNSET is not set") {
		t.Errorf("err = %v", err)
	}
}

func TestResultsInMongoDB(t *testing.T) {
	y := "results: \"mongodb://rpt:${RPT_DB_PASSWORD}@Reports11:30311/results?authSource=admin\"\n" +
		"results_read:\n  - mongodb://reports12:30312\n  - \"mongodb://rpt:${RPT_DB_PASSWORD}@reports13:30313,reports11:30311/rpt\"\n"
	c, err := Parse("rpt.yaml", []byte(y), getenv)
	if err != nil {
		t.Fatal(err)
	}
	if c.Results != "mongodb://rpt:s3cret-db@Reports11:30311/results?authSource=admin" {
		t.Errorf("results = %q (want the URI with the variable expanded)", c.Results)
	}
	if got := c.ResultsName(); got != "mongodb://reports11:30311/results" {
		t.Errorf("ResultsName() = %q: want scheme, lower-case hosts and database, no user or options", got)
	}
	var names []string
	for _, r := range c.ResultsRead {
		n, err := ResultStoreName(r)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	if strings.Join(names, " ") != "mongodb://reports12:30312/rpt mongodb://reports13:30313,reports11:30311/rpt" {
		t.Errorf("results_read names = %v", names)
	}
	for _, q := range []string{"", "queue"} {
		if n, err := ResultStoreName(q); err != nil || n != "queue" {
			t.Errorf("ResultStoreName(%q) = %q, %v; want queue", q, n, err)
		}
	}
}

// api: takes both TLS files, relative to the config file's folder.
func TestParseAPI(t *testing.T) {
	c, err := Parse("/etc/rpt/rpt.yaml", []byte("api:\n  tls_cert: certs/rpt.pem\n  tls_key: /keys/rpt.key\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.API.TLSCert != "/etc/rpt/certs/rpt.pem" || c.API.TLSKey != "/keys/rpt.key" {
		t.Errorf("api: %+v", c.API)
	}
}
