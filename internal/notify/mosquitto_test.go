package notify

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// readmeBlock returns the fenced block of README.md whose first line is first.
func readmeBlock(t *testing.T, first string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)```conf\n(" + regexp.QuoteMeta(first) + "\n.*?)```")
	m := re.FindSubmatch(b)
	if m == nil {
		t.Fatalf("README.md has no ```conf block starting %q", first)
	}
	return string(m[1])
}

// startMosquitto runs a private Mosquitto on a free port with the README's configuration
// and ACL and a password file made by mosquitto_passwd; it returns host:port. The
// shared Mosquitto of the machine is never touched.
func startMosquitto(t *testing.T, agentPass, clientPass string) string {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/mosquitto"); err != nil {
			t.Skip("mosquitto is not installed")
		}
	}
	passwd, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		t.Skip("mosquitto_passwd is not installed")
	}
	// Not t.TempDir: its parent is private, and Mosquitto started as root reads its files
	// as its own user.
	dir, err := os.MkdirTemp("", "rpt-mosquitto-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	pwFile, aclFile := filepath.Join(dir, "rpt.passwd"), filepath.Join(dir, "rpt.acl")
	for i, u := range [][2]string{{AgentUser, agentPass}, {ClientUser, clientPass}} {
		args := []string{"-b", pwFile, u[0], u[1]}
		if i == 0 {
			args = append([]string{"-c"}, args...)
		}
		if out, err := exec.Command(passwd, args...).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd: %v: %s", err, out)
		}
	}
	if err := os.WriteFile(aclFile, []byte(readmeBlock(t, "# rpt: mosquitto ACL (acl_file). No rule outside a user block: anonymous clients get nothing.")), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(pwFile, 0o644)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	_ = l.Close()
	conf := readmeBlock(t, "# rpt: mosquitto.conf")
	for _, want := range []string{"allow_anonymous false", "password_file /etc/mosquitto/rpt.passwd", "acl_file /etc/mosquitto/rpt.acl", "listener 1883"} {
		if !strings.Contains(conf, want+"\n") {
			t.Fatalf("README's mosquitto.conf lacks %q", want)
		}
	}
	conf = strings.NewReplacer("listener 1883", "listener "+port+" 127.0.0.1",
		"/etc/mosquitto/rpt.passwd", pwFile, "/etc/mosquitto/rpt.acl", aclFile).Replace(conf)
	conf += "persistence false\nlog_dest stderr\nlog_type error\nlog_type warning\n"
	confFile := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", confFile)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start mosquitto: %v", err)
	}
	var logLines []string
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logLines = append(logLines, sc.Text())
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		<-logDone
		if t.Failed() {
			t.Logf("mosquitto log:\n%s", strings.Join(logLines, "\n"))
		}
	})
	deadline := time.Now().Add(waitLimit)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto did not listen on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The README's ACL on a real Mosquitto: strangers refused, clients cannot forge events.
func TestMosquittoWithTheDocumentedACL(t *testing.T) {
	t.Parallel()
	agentPass, clientPass := "agent-"+fmt.Sprint(time.Now().UnixNano()), "client-"+fmt.Sprint(time.Now().UnixNano())
	addr := startMosquitto(t, agentPass, clientPass)
	for _, tc := range []struct{ name, user, pass string }{
		{"anonymous", "", ""},
		{"agent with the client password", AgentUser, clientPass},
		{"unknown user", "admin", agentPass},
	} {
		if _, err := rawClient(t, addr, tc.user, tc.pass, nil); err == nil {
			t.Errorf("%s: connected, want refused", tc.name)
		}
	}
	forgeryCase(t, addr, "rpt", agentPass, clientPass)
}
