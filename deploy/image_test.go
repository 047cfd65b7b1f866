// Package deploy_test checks deploy/: the container image's build (the exact flags of the
// Dockerfile, a static binary that runs as a non-root user with only the DaemonSet's
// environment) and the Kustomize manifests against the node table (nodes.tsv). No Docker
// daemon is needed: the Dockerfile's build line is parsed and run with the local toolchain.
package deploy_test

import (
	"bufio"
	"debug/elf"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// buildLine is the Dockerfile's `RUN ... go build ...` line: its environment assignments
// and the go command's arguments, with ${VAR}s of the Dockerfile still in them.
type buildLine struct {
	env  []string // CGO_ENABLED=0
	args []string // after "go": build -trimpath ...
}

// parseBuildLine finds the one RUN line that calls go build in a Dockerfile.
func parseBuildLine(path string) (buildLine, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return buildLine{}, err
	}
	var found []buildLine
	for i, line := range strings.Split(string(data), "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "RUN ")
		if !ok || !strings.Contains(rest, "go build") {
			continue
		}
		words, err := shellWords(rest)
		if err != nil {
			return buildLine{}, fmt.Errorf("%s:%d: %v", path, i+1, err)
		}
		var b buildLine
		for len(words) > 0 && strings.Contains(words[0], "=") {
			b.env, words = append(b.env, words[0]), words[1:]
		}
		if len(words) < 2 || words[0] != "go" || words[1] != "build" {
			return buildLine{}, fmt.Errorf("%s:%d: want `RUN [VAR=value...] go build ...` on one line, got %q", path, i+1, rest)
		}
		b.args = words[1:]
		found = append(found, b)
	}
	if len(found) != 1 {
		return buildLine{}, fmt.Errorf("%s: want exactly one RUN line with go build, found %d", path, len(found))
	}
	return found[0], nil
}

// shellWords splits a command line as sh would for the quoting the Dockerfile uses
// (double and single quotes, no escapes), leaving ${VAR} unexpanded.
func shellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case r == '\\' || r == '&' || r == ';' || r == '|':
			return nil, fmt.Errorf("the build line must be a single command (found %q)", r)
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unclosed quote")
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// dockerVar replaces ${NAME} as the Dockerfile's ARGs would.
func dockerVar(s string, vars map[string]string) string {
	return regexp.MustCompile(`\$\{(\w+)\}`).ReplaceAllStringFunc(s, func(m string) string {
		return vars[m[2:len(m)-1]]
	})
}

func has(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// The rules both Dockerfiles' build lines keep: reproducible paths and the version stamped
// the way make build stamps it (rpt version shows it).
func checkBuildFlags(b buildLine) error {
	if !has(b.args, "-trimpath") {
		return fmt.Errorf("go build without -trimpath: %q", b.args)
	}
	ld := ""
	for i, a := range b.args {
		if a == "-ldflags" && i+1 < len(b.args) {
			ld = b.args[i+1]
		}
	}
	if !strings.Contains(ld, "-X main.version=${VERSION}") {
		return fmt.Errorf("-ldflags %q does not stamp -X main.version=${VERSION}", ld)
	}
	if !has(b.args, "./cmd/rpt") {
		return fmt.Errorf("go build does not build ./cmd/rpt: %q", b.args)
	}
	return nil
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

const testVersion = "v9.8.7-deploytest"

// builtBinary builds rpt exactly as deploy/Dockerfile does (its flags and environment,
// VERSION=testVersion), once per test run.
func builtBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		b, err := parseBuildLine("Dockerfile")
		if err != nil {
			binErr = err
			return
		}
		if !has(b.env, "CGO_ENABLED=0") {
			binErr = fmt.Errorf("Dockerfile: the build line does not set CGO_ENABLED=0 (env %q): the binary would need a libc", b.env)
			return
		}
		if binErr = checkBuildFlags(b); binErr != nil {
			return
		}
		dir, err := os.MkdirTemp("", "rpt-deploy-bin")
		if err != nil {
			binErr = err
			return
		}
		// Readable and runnable by the unprivileged user of the run test.
		if err := os.Chmod(dir, 0o755); err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "rpt")
		args := []string{}
		for i := 0; i < len(b.args); i++ {
			a := dockerVar(b.args[i], map[string]string{"VERSION": testVersion})
			if a == "-o" && i+1 < len(b.args) {
				args = append(args, "-o", binPath) // the Dockerfile's /out/rpt, here
				i++
				continue
			}
			args = append(args, a)
		}
		cmd := exec.Command("go", args...)
		cmd.Dir = ".." // the module root is the Docker build context
		cmd.Env = append(os.Environ(), b.env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

func TestDockerfileBuildsStaticBinary(t *testing.T) {
	bin := builtBinary(t)
	if err := checkStatic(bin); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), testVersion) {
		t.Fatalf("rpt version = %q (%v), want the stamped %s", out, err, testVersion)
	}
}

// checkStatic: no program interpreter (ld.so) and no dynamic section, so the binary runs on
// distroless/static, which has no libc.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, p := range f.Progs {
		switch p.Type {
		case elf.PT_INTERP:
			return fmt.Errorf("%s has a PT_INTERP program header: dynamically linked", path)
		case elf.PT_DYNAMIC:
			return fmt.Errorf("%s has a PT_DYNAMIC program header: dynamically linked", path)
		}
	}
	if s := f.Section(".dynamic"); s != nil {
		return fmt.Errorf("%s has a .dynamic section", path)
	}
	return nil
}

// The static check can fail: a cgo binary linked against libc is caught.
func TestCheckStaticCatchesDynamicBinary(t *testing.T) {
	for _, p := range []string{"/bin/sh", "/usr/bin/env"} {
		if _, err := os.Stat(p); err == nil {
			if err := checkStatic(p); err == nil {
				t.Fatalf("checkStatic(%s) = nil, want an error for a dynamically linked binary", p)
			}
			return
		}
	}
	t.Skip("no dynamically linked binary to check against")
}

func TestDockerfileRules(t *testing.T) {
	for _, tc := range []struct{ file, cgo string }{{"Dockerfile", "CGO_ENABLED=0"}, {"Dockerfile.odbc", "CGO_ENABLED=1"}} {
		b, err := parseBuildLine(tc.file)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkBuildFlags(b); err != nil {
			t.Errorf("%s: %v", tc.file, err)
		}
		if !has(b.env, tc.cgo) {
			t.Errorf("%s: build env %q, want %s", tc.file, b.env, tc.cgo)
		}
		data, _ := os.ReadFile(tc.file)
		// The final stage runs as a numeric non-root user (runAsNonRoot can check it).
		user := regexp.MustCompile(`(?m)^USER (\d+)(:\d+)?$`).FindAllStringSubmatch(string(data), -1)
		if len(user) == 0 || user[len(user)-1][1] == "0" {
			t.Errorf("%s: no numeric non-root USER in the final stage (%q)", tc.file, user)
		}
		// The pod's runAsUser is the image's user, so files the image owns stay readable.
		if ds := readBaseDaemonSet(t); len(user) > 0 && user[len(user)-1][1] != fmt.Sprint(ds.Spec.Template.Spec.SecurityContext.RunAsUser) {
			t.Errorf("%s: USER %s, but base/daemonset.yaml runs as %d", tc.file, user[len(user)-1][1], ds.Spec.Template.Spec.SecurityContext.RunAsUser)
		}
		if strings.Count(string(data), "\nFROM ") < 2 {
			t.Errorf("%s: not a multi-stage build", tc.file)
		}
	}
	// The rules can fail: a line without -trimpath, or without the version stamp.
	for _, bad := range []buildLine{
		{args: []string{"build", "-ldflags", "-X main.version=${VERSION}", "-o", "x", "./cmd/rpt"}},
		{args: []string{"build", "-trimpath", "-o", "x", "./cmd/rpt"}},
	} {
		if checkBuildFlags(bad) == nil {
			t.Errorf("checkBuildFlags(%q) = nil, want an error", bad.args)
		}
	}
}

// daemonSet is the part of base/daemonset.yaml the run test uses.
type daemonSet struct {
	Spec struct {
		Template struct {
			Spec struct {
				TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
				SecurityContext               struct {
					RunAsUser  int `yaml:"runAsUser"`
					RunAsGroup int `yaml:"runAsGroup"`
				} `yaml:"securityContext"`
				Containers []struct {
					Args []string `yaml:"args"`
					Env  []struct {
						Name      string         `yaml:"name"`
						Value     *string        `yaml:"value"`
						ValueFrom map[string]any `yaml:"valueFrom"`
					} `yaml:"env"`
				} `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

func readBaseDaemonSet(t *testing.T) daemonSet {
	t.Helper()
	data, err := os.ReadFile("base/daemonset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var ds daemonSet
	if err := yaml.Unmarshal(data, &ds); err != nil {
		t.Fatal(err)
	}
	if len(ds.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("base/daemonset.yaml: want one container")
	}
	return ds
}

// TestImageRunsAsNonRoot runs the Dockerfile's binary the way the DaemonSet runs it: as
// the pod's non-root user, in an empty working directory, with only the environment
// and arguments of base/daemonset.yaml (the config file, the Secret's variable and the
// node name stand in for the mounted ConfigMap, the Secret and the downward API; /tmp,
// the emptyDir, is a fresh directory). /healthz and /readyz must answer, and SIGTERM
// must end it with exit 0 well within terminationGracePeriodSeconds.
func TestImageRunsAsNonRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch to the pod's user with setpriv")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("setpriv (util-linux) not installed")
	}
	bin := builtBinary(t)
	ds := readBaseDaemonSet(t)
	pod := ds.Spec.Template.Spec
	c := pod.Containers[0]
	if pod.SecurityContext.RunAsUser == 0 {
		t.Fatal("base/daemonset.yaml: runAsUser is 0 or unset")
	}
	uid, gid := pod.SecurityContext.RunAsUser, pod.SecurityContext.RunAsGroup

	// The emptyDir and the ConfigMap's mount, owned as Kubernetes would have them.
	root, err := os.MkdirTemp("", "rpt-deploy-run") // t.TempDir's parent is 0700: the user could not enter
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	tmp := filepath.Join(root, "tmp")      // emptyDir: writable by the pod's user
	etc := filepath.Join(root, "etc-rpt")  // ConfigMap: read-only, owned by root
	work := filepath.Join(root, "workdir") // the image's working directory: empty
	for _, d := range []string{tmp, etc, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(tmp, uid, gid); err != nil {
		t.Fatal(err)
	}
	// The overlay's config says where the queue is; here an SQLite queue on the emptyDir
	// (the user can write nothing else), and the password variable must still be used.
	cfg := fmt.Sprintf("queue: sqlite:%s/queue.db\nsources:\n  demo: {driver: sqlite, dsn: \"sqlite:%s/demo.db?x=${RPT_DB_PASSWORD}\"}\n", tmp, tmp)
	if err := os.WriteFile(filepath.Join(etc, "rpt.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}

	// Only the DaemonSet's environment, each valueFrom resolved as the kubelet would.
	env := []string{}
	for _, e := range c.Env {
		var v string
		switch {
		case e.Value != nil:
			v = *e.Value
		case e.ValueFrom["fieldRef"] != nil:
			v = "node-under-test" // spec.nodeName
		case e.ValueFrom["secretKeyRef"] != nil:
			v = "not-a-real-password"
		default:
			t.Fatalf("env %s: unknown valueFrom %v", e.Name, e.ValueFrom)
		}
		v = strings.ReplaceAll(v, "/etc/rpt", etc)
		if v == "/tmp" {
			v = tmp
		}
		env = append(env, e.Name+"="+v)
	}
	// The DaemonSet's args, on a free loopback port instead of :9464.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	args := []string{"--reuid=" + fmt.Sprint(uid), "--regid=" + fmt.Sprint(gid), "--clear-groups", bin}
	sawListen := false
	for _, a := range c.Args {
		if strings.HasPrefix(a, "--listen=") {
			a, sawListen = "--listen="+addr, true
		}
		args = append(args, a)
	}
	if !sawListen {
		t.Fatalf("base/daemonset.yaml: the agent's args %q have no --listen=", c.Args)
	}
	cmd := exec.Command(setpriv, args...)
	cmd.Dir = work
	cmd.Env = env
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-exited
		}
	}()

	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		var b strings.Builder
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			b.WriteString(sc.Text())
		}
		return resp.StatusCode, b.String()
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		h, _ := get("/healthz")
		r, _ := get("/readyz")
		if h == 200 && r == 200 {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("agent exited before it was ready: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz %d, /readyz %d after 20s\n%s", h, r, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "rpt_") {
		t.Errorf("/metrics: %d, no rpt_ metric", code)
	}
	rss := residentKiB(cmd.Process.Pid)
	t.Logf("idle agent resident set: %d KiB", rss)

	// Nothing was written outside the emptyDir (the root filesystem is read-only there).
	if ents, _ := os.ReadDir(work); len(ents) != 0 {
		t.Errorf("the agent wrote into its working directory: %v", ents)
	}
	if ents, _ := os.ReadDir(etc); len(ents) != 1 {
		t.Errorf("the agent wrote into the config mount: %v", ents)
	}

	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	grace := time.Duration(pod.TerminationGracePeriodSeconds) * time.Second
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("after SIGTERM: %v\n%s", err, logs.String())
		}
		t.Logf("stopped %s after SIGTERM (grace %s)", time.Since(start).Round(time.Millisecond), grace)
	case <-time.After(grace):
		t.Fatalf("still running %s after SIGTERM\n%s", grace, logs.String())
	}
	if !strings.Contains(logs.String(), `"agent":"node-under-test"`) {
		t.Errorf("the agent's name is not the node's name (RPT_AGENT_NAME from spec.nodeName):\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "not-a-real-password") {
		t.Errorf("the Secret's value is in the agent's log")
	}
}

// residentKiB reads VmRSS of the agent (setpriv execs it, so the pid is the agent's).
func residentKiB(pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			var n int
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &n)
			return n
		}
	}
	return 0
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}
