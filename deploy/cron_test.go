package deploy_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cronFlags are the flags `rpt cron run` accepts, read from the built binary's help.
func cronFlags(t *testing.T) map[string]bool {
	t.Helper()
	out, err := exec.Command(builtBinary(t), "cron", "run", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("rpt cron run --help: %v\n%s", err, out)
	}
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+--([a-z][-a-z]*)`).FindAllStringSubmatch(string(out), -1) {
		flags[m[1]] = true
	}
	if !flags["schedules"] {
		t.Fatalf("rpt cron run --help lists no --schedules:\n%s", out)
	}
	return flags
}

// cronCommandRe is a crontab line's command that rpt cron run can run in a shell-less
// image: rpt submit alone, no pipe, redirection or second command.
var cronCommandRe = regexp.MustCompile(`^/usr/local/bin/rpt submit [^|;&<>$` + "`" + `]+$`)

// crontabCommands are the commands of a crontab file's schedule lines (comments and
// NAME=value lines skipped), with their line numbers.
func crontabCommands(text string) (cmds []string, lines []int) {
	for i, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") || regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*\s*=`).MatchString(l) {
			continue
		}
		f := strings.Fields(l)
		n := 5
		if strings.HasPrefix(f[0], "@") {
			n = 1
		}
		if len(f) <= n {
			cmds, lines = append(cmds, ""), append(lines, i+1)
			continue
		}
		// The command keeps its own spacing from the sixth field on.
		rest := l
		for range n {
			rest = strings.TrimLeft(rest, " \t")
			rest = rest[strings.IndexAny(rest+" ", " \t"):]
		}
		cmds, lines = append(cmds, strings.TrimSpace(rest)), append(lines, i+1)
	}
	return cmds, lines
}

// checkCron returns every rule the rendered rpt cron run Deployment and its crontab
// ConfigMap break. nodes are the overlay's table rows.
func checkCron(objs []map[string]any, nodes []node, flags map[string]bool) []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf("rpt-cron: "+format, a...)) }
	dep := findNamed(objs, "Deployment", "rpt-cron")
	if dep == nil {
		return []error{fmt.Errorf("rpt-cron: no Deployment")}
	}
	pod := get(dep, "spec.template.spec")
	c, _ := get(pod, "containers.0").(map[string]any)
	if c == nil {
		return []error{fmt.Errorf("rpt-cron: Deployment has no container")}
	}
	agent := get(find(objs, "DaemonSet"), "spec.template.spec.containers.0")

	// At least one runner (once keys make more safe, one is enough); a rollout starts
	// the new runner before the old one stops, so no occurrence falls in a gap.
	if r, ok := toInt(get(dep, "spec.replicas")); !ok || r < 1 {
		bad("replicas %v: want at least 1", get(dep, "spec.replicas"))
	}
	if mu, ok := toInt(get(dep, "spec.strategy.rollingUpdate.maxUnavailable")); !ok || mu != 0 {
		bad("strategy.rollingUpdate.maxUnavailable %v: want 0 (the new runner starts before the old one stops)", get(dep, "spec.strategy.rollingUpdate.maxUnavailable"))
	}

	// Image: pinned, and the agents'.
	image := str(c["image"])
	if !tagRe.MatchString(image) || strings.HasSuffix(image, ":latest") {
		bad("image %q is not pinned to a tag or digest", image)
	}
	if di := str(get(agent, "image")); di != image {
		bad("image %q, the agents run %q", image, di)
	}

	// Volumes by name: the configMap each one mounts.
	volCM := map[string]string{}
	for _, v := range asList(get(pod, "volumes")) {
		if n := str(get(v, "configMap.name")); n != "" {
			volCM[str(get(v, "name"))] = n
		}
	}
	mounts := map[string]string{} // mount path -> configMap name
	for _, m := range asList(get(c, "volumeMounts")) {
		if cm, ok := volCM[str(get(m, "name"))]; ok {
			mounts[str(get(m, "mountPath"))] = cm
		}
	}

	// Args: cron run, flags it has, and crontab files from the generated rpt-crontab.
	args := asList(c["args"])
	if len(args) < 2 || str(args[0]) != "cron" || str(args[1]) != "run" {
		bad("args %v: want cron run first", args)
	}
	var files []string
	for _, a := range args[min(2, len(args)):] {
		s := str(a)
		if strings.HasPrefix(s, "--") {
			name, _, _ := strings.Cut(strings.TrimPrefix(s, "--"), "=")
			if !flags[name] {
				bad("arg %q is not a flag of rpt cron run", s)
			}
			continue
		}
		files = append(files, s)
	}
	if len(files) == 0 {
		bad("args %v name no crontab file", args)
	}
	for _, f := range files {
		cmName := mounts[filepath.Dir(f)]
		cm := findNamed(objs, "ConfigMap", cmName)
		if cm == nil || !strings.HasPrefix(cmName, "rpt-crontab-") {
			bad("crontab %s is not in a mounted ConfigMap from the configMapGenerator rpt-crontab (mounts %v)", f, mounts)
			continue
		}
		data, _ := get(cm, "data").(map[string]any)
		text, ok := data[filepath.Base(f)].(string)
		if !ok {
			bad("ConfigMap %s has no key %s", cmName, filepath.Base(f))
			continue
		}
		cmds, lines := crontabCommands(text)
		if len(cmds) == 0 {
			bad("crontab %s has no schedule line", f)
		}
		for i, cmd := range cmds {
			if !cronCommandRe.MatchString(cmd) {
				bad("crontab %s:%d: %q: want /usr/local/bin/rpt submit alone (the runner refuses a submit line in a pipe, and the image has no shell for other lines)", f, lines[i], cmd)
			} else if !strings.Contains(cmd, "--once-per") && !strings.Contains(cmd, "--dedupe") {
				bad("crontab %s:%d: no --once-per or --dedupe: two runners in a rollout would queue the occurrence twice", f, lines[i])
			}
		}
	}

	// The queue through the agents' config and Secret.
	agentCM := ""
	for _, v := range asList(get(find(objs, "DaemonSet"), "spec.template.spec.volumes")) {
		if str(get(v, "name")) == "config" {
			agentCM = str(get(v, "configMap.name"))
		}
	}
	envOf := func(cont any) map[string]any {
		m := map[string]any{}
		for _, e := range asList(get(cont, "env")) {
			m[str(get(e, "name"))] = e
		}
		return m
	}
	cronEnv, agentEnv := envOf(c), envOf(agent)
	cfg := str(get(cronEnv["RPT_CONFIG"], "value"))
	if cfg == "" || cfg != str(get(agentEnv["RPT_CONFIG"], "value")) {
		bad("RPT_CONFIG %q, the agents' is %q", cfg, get(agentEnv["RPT_CONFIG"], "value"))
	} else if cm := mounts[filepath.Dir(cfg)]; cm != agentCM || agentCM == "" {
		bad("RPT_CONFIG %s is in ConfigMap %q, the agents' config is %q", cfg, cm, agentCM)
	}
	for name, e := range cronEnv {
		if strings.Contains(name, "PASSWORD") && get(e, "value") != nil {
			bad("env %s has a literal value: take it from the Secret (valueFrom.secretKeyRef)", name)
		}
	}
	for name, e := range agentEnv {
		if ref := get(e, "valueFrom.secretKeyRef"); ref != nil && fmt.Sprint(get(cronEnv[name], "valueFrom.secretKeyRef")) != fmt.Sprint(ref) {
			bad("env %s: %v, the agents take it from Secret %v", name, get(cronEnv[name], "valueFrom"), ref)
		}
	}

	// Nothing listens: no probe can ask anything but the database (which must not
	// restart the runner), and no port is declared.
	for _, p := range []string{"livenessProbe", "readinessProbe", "startupProbe"} {
		if pr := get(c, p); pr != nil {
			bad("%s %v: rpt cron run serves no endpoint; a probe could only test the database, whose outage must not restart the runner", p, pr)
		}
	}
	if get(c, "ports") != nil {
		bad("ports %v: rpt cron run listens on none", get(c, "ports"))
	}

	// Security and resources, as the agents'.
	if get(pod, "securityContext.runAsNonRoot") != true || get(c, "securityContext.runAsNonRoot") != true {
		bad("runAsNonRoot is not set on the pod and the container")
	}
	if get(c, "securityContext.readOnlyRootFilesystem") != true {
		bad("readOnlyRootFilesystem is not true")
	}
	if fmt.Sprint(get(c, "securityContext.capabilities.drop")) != "[ALL]" || get(c, "securityContext.allowPrivilegeEscalation") != false {
		bad("capabilities: want drop ALL and no privilege escalation")
	}
	if get(pod, "securityContext.seccompProfile.type") != "RuntimeDefault" {
		bad("seccomp profile is not RuntimeDefault")
	}
	if get(pod, "automountServiceAccountToken") != false {
		bad("automountServiceAccountToken is not false (the runner calls no Kubernetes API)")
	}
	for _, k := range []string{"requests.cpu", "requests.memory", "limits.cpu", "limits.memory"} {
		if get(c, "resources."+k) == nil {
			bad("resources.%s not set", k)
		}
	}

	// On the overlay's nodes, resolving their names as the agents do.
	var want, got []string
	for _, n := range nodes {
		want = append(want, n.name)
	}
	for _, v := range asList(get(pod, "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms.0.matchExpressions.0.values")) {
		got = append(got, str(v))
	}
	sort.Strings(want)
	sort.Strings(got)
	if !slices.Equal(got, want) {
		bad("affinity: nodes %v, want the table's %v", got, want)
	}
	aliases := map[string]string{}
	for _, h := range asList(get(pod, "hostAliases")) {
		for _, hn := range asList(get(h, "hostnames")) {
			aliases[str(hn)] = str(get(h, "ip"))
		}
	}
	for _, n := range nodes {
		if aliases[n.name] != n.ip {
			bad("hostAliases: %s -> %q, want %s from the table", n.name, aliases[n.name], n.ip)
		}
	}
	return errs
}

// TestCronRender renders every overlay and checks the rpt cron run Deployment.
func TestCronRender(t *testing.T) {
	kubectl := kubectlOrSkip(t)
	names, m := byOverlay(readTable(t))
	flags := cronFlags(t)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			for _, err := range checkCron(renderOverlay(t, kubectl, name), m[name], flags) {
				t.Error(err)
			}
		})
	}
}

// TestCronCrontabRuns runs the rendered crontab with rpt cron run (the file lines and
// the database schedules, on a SQLite queue) as the pod would: it starts, lists both
// lines, and exits 0 on SIGTERM.
func TestCronCrontabRuns(t *testing.T) {
	kubectl := kubectlOrSkip(t)
	names, _ := byOverlay(readTable(t))
	objs := renderOverlay(t, kubectl, names[0])
	var text string
	for _, o := range objs {
		if o["kind"] == "ConfigMap" && strings.HasPrefix(str(get(o, "metadata.name")), "rpt-crontab-") {
			data, _ := get(o, "data").(map[string]any)
			text, _ = data["reports.crontab"].(string)
		}
	}
	if text == "" {
		t.Fatal("no rpt-crontab ConfigMap with reports.crontab")
	}
	dir := t.TempDir()
	tab := filepath.Join(dir, "reports.crontab")
	cfg := filepath.Join(dir, "rpt.yaml")
	if err := os.WriteFile(tab, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte("queue: sqlite:"+filepath.Join(dir, "q.db")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := builtBinary(t)
	env := append(os.Environ(), "RPT_CONFIG="+cfg)
	mig := exec.Command(bin, "db", "migrate")
	mig.Env = env
	if out, err := mig.CombinedOutput(); err != nil {
		t.Fatalf("rpt db migrate: %v\n%s", err, out)
	}
	var stderr bytes.Buffer
	run := exec.Command(bin, "cron", "run", "--schedules", tab)
	run.Env, run.Stderr = env, &stderr
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(stderr.String(), `"msg":"running"`) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	run.Process.Signal(syscall.SIGTERM)
	if err := run.Wait(); err != nil {
		t.Fatalf("rpt cron run: %v (want exit 0 on SIGTERM)\n%s", err, stderr.String())
	}
	cmds, _ := crontabCommands(text)
	if got := strings.Count(stderr.String(), "(submit "); got != len(cmds) || got == 0 {
		t.Fatalf("rpt cron run lists %d submit lines, the crontab has %d:\n%s", got, len(cmds), stderr.String())
	}
}

// TestCronRulesFail breaks each rule on purpose and expects checkCron to name it.
func TestCronRulesFail(t *testing.T) {
	kubectl := kubectlOrSkip(t)
	names, m := byOverlay(readTable(t))
	flags := cronFlags(t)
	name := names[0]
	pristine := renderOverlay(t, kubectl, name)
	if errs := checkCron(pristine, m[name], flags); len(errs) != 0 {
		t.Fatalf("the unbroken overlay fails: %v", errs)
	}
	crontab := func(objs []map[string]any, text string) []map[string]any {
		for _, o := range objs {
			if o["kind"] == "ConfigMap" && strings.HasPrefix(str(get(o, "metadata.name")), "rpt-crontab-") {
				get(o, "data").(map[string]any)["reports.crontab"] = text
			}
		}
		return objs
	}
	envNamed := func(c map[string]any, name string) map[string]any {
		for _, e := range asList(c["env"]) {
			if str(get(e, "name")) == name {
				return e.(map[string]any)
			}
		}
		return nil
	}
	for _, tc := range []struct {
		rule   string
		want   string
		break_ func(objs []map[string]any, dep, c map[string]any) []map[string]any
	}{
		{"no deployment", "no Deployment", func(objs []map[string]any, dep, _ map[string]any) []map[string]any {
			dep["kind"] = "CronJob"
			return objs
		}},
		{"no replicas", "replicas", func(objs []map[string]any, dep, _ map[string]any) []map[string]any {
			set(dep, "spec.replicas", 0)
			return objs
		}},
		{"rollout gap", "maxUnavailable", func(objs []map[string]any, dep, _ map[string]any) []map[string]any {
			set(dep, "spec.strategy.rollingUpdate.maxUnavailable", 1)
			return objs
		}},
		{"image not pinned", "not pinned", func(objs []map[string]any, _, c map[string]any) []map[string]any {
			c["image"] = "registry.local/rpt:latest"
			return objs
		}},
		{"image not the agents'", "the agents run", func(objs []map[string]any, _, c map[string]any) []map[string]any {
			c["image"] = "registry.local/rpt:v9.9.9"
			return objs
		}},
		{"not cron run", "want cron run", func(objs []map[string]any, _, c map[string]any) []map[string]any {
			c["args"].([]any)[1] = "lint"
			return objs
		}},
		{"unknown flag", "not a flag of rpt cron run", func(objs []map[string]any, _, c map[string]any) []map[string]any {
			c["args"] = append(c["args"].([]any), "--listen=:9464")
			return objs
		}},
		{"no crontab file", "name no crontab file", func(objs []map[string]any, _, c map[string]any) []map[string]any {
			c["args"] = []any{"cron", "run", "--schedules"}
			return objs
		}},
		{"crontab not mounted", "not in a mounted ConfigMap", func(objs []map[string]any, _, c map[string]any) []map[string]any {
			c["args"].([]any)[3] = "/etc/cron.d/reports"
			return objs
		}},
		{"crontab key missing", "has no key", func(objs []map[string]any, _, c map[string]any) []map[string]any {
			c["args"].([]any)[3] = "/etc/rpt-cron/etl.crontab"
			return objs
		}},
		{"piped submit", "want /usr/local/bin/rpt submit alone", func(objs []map[string]any, _, _ map[string]any) []map[string]any {
			return crontab(objs, "10 3 * * *  /usr/local/bin/rpt submit trial-balance --once-per 1h 2>&1 | /usr/bin/logger -t rpt-cron\n")
		}},
		{"shell line", "want /usr/local/bin/rpt submit alone", func(objs []map[string]any, _, _ map[string]any) []map[string]any {
			return crontab(objs, "10 3 * * *  /usr/local/bin/rpt etl run accounting-ytd\n")
		}},
		{"no once key", "no --once-per", func(objs []map[string]any, _, _ map[string]any) []map[string]any {
			return crontab(objs, "10 3 * * *  /usr/local/bin/rpt submit trial-balance\n")
		}},
		{"empty crontab", "no schedule line", func(objs []map[string]any, _, _ map[string]any) []map[string]any {
			return crontab(objs, "# nothing\nCRON_TZ=UTC\n")
		}},
		{"other config", "RPT_CONFIG", func(objs []map[string]any, _, c map[string]any) []map[string]any {
			envNamed(c, "RPT_CONFIG")["value"] = "/tmp/rpt.yaml"
			return objs
		}},
		{"config not the agents'", "the agents' config", func(objs []map[string]any, dep, _ map[string]any) []map[string]any {
			set(dep, "spec.template.spec.volumes.0.configMap.name", "rpt-config")
			return objs
		}},
		{"literal password", "literal value", func(objs []map[string]any, _, c map[string]any) []map[string]any {
			e := envNamed(c, "RPT_DB_PASSWORD")
			delete(e, "valueFrom")
			e["value"] = "hunter2"
			return objs
		}},
		{"other secret", "the agents take it from Secret", func(objs []map[string]any, _, c map[string]any) []map[string]any {
			set(envNamed(c, "RPT_DB_PASSWORD"), "valueFrom.secretKeyRef.name", "other")
			return objs
		}},
		{"liveness", "livenessProbe", func(objs []map[string]any, _, c map[string]any) []map[string]any {
			c["livenessProbe"] = map[string]any{"httpGet": map[string]any{"path": "/healthz", "port": 9464}}
			return objs
		}},
		{"readiness", "readinessProbe", func(objs []map[string]any, _, c map[string]any) []map[string]any {
			c["readinessProbe"] = map[string]any{"tcpSocket": map[string]any{"port": 9464}}
			return objs
		}},
		{"a port", "listens on none", func(objs []map[string]any, _, c map[string]any) []map[string]any {
			c["ports"] = []any{map[string]any{"containerPort": 9464}}
			return objs
		}},
		{"root", "runAsNonRoot", func(objs []map[string]any, _, c map[string]any) []map[string]any {
			set(c, "securityContext.runAsNonRoot", false)
			return objs
		}},
		{"writable root", "readOnlyRootFilesystem", func(objs []map[string]any, _, c map[string]any) []map[string]any {
			set(c, "securityContext.readOnlyRootFilesystem", false)
			return objs
		}},
		{"capabilities", "capabilities", func(objs []map[string]any, _, c map[string]any) []map[string]any {
			set(c, "securityContext.capabilities.drop", []any{"NET_RAW"})
			return objs
		}},
		{"seccomp", "seccomp", func(objs []map[string]any, dep, _ map[string]any) []map[string]any {
			set(dep, "spec.template.spec.securityContext.seccompProfile.type", "Unconfined")
			return objs
		}},
		{"token", "automountServiceAccountToken", func(objs []map[string]any, dep, _ map[string]any) []map[string]any {
			set(dep, "spec.template.spec.automountServiceAccountToken", true)
			return objs
		}},
		{"no limits", "resources.limits", func(objs []map[string]any, _, c map[string]any) []map[string]any {
			delete(c["resources"].(map[string]any), "limits")
			return objs
		}},
		{"affinity", "affinity", func(objs []map[string]any, dep, _ map[string]any) []map[string]any {
			set(dep, "spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms.0.matchExpressions.0.values", []any{"reports99"})
			return objs
		}},
		{"host aliases", "hostAliases", func(objs []map[string]any, dep, _ map[string]any) []map[string]any {
			set(dep, "spec.template.spec.hostAliases.0.ip", "10.9.9.9")
			return objs
		}},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			objs := deepCopy(pristine)
			dep := findNamed(objs, "Deployment", "rpt-cron")
			c := get(dep, "spec.template.spec.containers.0").(map[string]any)
			objs = tc.break_(objs, dep, c)
			errs := checkCron(objs, m[name], flags)
			for _, err := range errs {
				if strings.Contains(err.Error(), tc.want) {
					return
				}
			}
			t.Fatalf("broke %s: errors %v, want one mentioning %q", tc.rule, errs, tc.want)
		})
	}
}
