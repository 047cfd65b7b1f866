package deploy_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite deploy/overlays from nodes.tsv")

// node is one row of nodes.tsv.
type node struct {
	line                      int
	overlay, name, ip         string
	mysql, mosquitto, mongodb int // mongodb 0: none
	plant, timezone           string
}

const minNodePort, maxNodePort = 30000, 32767

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// parseTable reads nodes.tsv. Every problem is an error naming file:line and the column,
// so a bad row fails the generator (and the test) with a message saying what to fix.
func parseTable(file string, data []byte) ([]node, error) {
	var nodes []node
	var errs []error
	bad := func(line int, col, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s:%d: %s: %s", file, line, col, fmt.Sprintf(format, a...)))
	}
	for i, l := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			continue
		}
		f := strings.Split(l, "\t")
		if len(f) != 8 {
			bad(i+1, "row", "want 8 tab-separated columns (overlay node ip mysql mosquitto mongodb plant timezone), got %d", len(f))
			continue
		}
		n := node{line: i + 1, overlay: f[0], name: f[1], ip: f[2], plant: f[6], timezone: f[7]}
		if !dnsLabel.MatchString(n.overlay) {
			bad(n.line, "overlay", "%q is not a lower-case DNS label", n.overlay)
		}
		if !dnsLabel.MatchString(n.name) {
			bad(n.line, "node", "%q is not a lower-case DNS label (a Kubernetes node name)", n.name)
		}
		if ip := net.ParseIP(n.ip); ip == nil || ip.To4() == nil {
			bad(n.line, "ip", "%q is not an IPv4 address", n.ip)
		}
		port := func(col, s string, optional bool) int {
			if s == "-" && optional {
				return 0
			}
			p, err := strconv.Atoi(s)
			if err != nil {
				bad(n.line, col, "%q is not a port number", s)
				return 0
			}
			if p < minNodePort || p > maxNodePort {
				bad(n.line, col, "NodePort %d is outside the valid range %d-%d", p, minNodePort, maxNodePort)
			}
			return p
		}
		n.mysql = port("mysql", f[3], false)
		n.mosquitto = port("mosquitto", f[4], false)
		n.mongodb = port("mongodb", f[5], true)
		if n.plant != "-" && !dnsLabel.MatchString(n.plant) {
			bad(n.line, "plant", "%q: want a lower-case name or -", n.plant)
		}
		if _, err := time.LoadLocation(n.timezone); err != nil || n.timezone == "" || n.timezone == "Local" {
			bad(n.line, "timezone", "%q is not an IANA time zone", n.timezone)
		}
		nodes = append(nodes, n)
	}
	// A NodePort is open on every node of a cluster: unique within the overlay.
	seenNode := map[string]node{}
	seenPort := map[string]string{} // overlay/port -> node.column
	first := map[string]node{}
	for _, n := range nodes {
		if o, ok := seenNode[n.name]; ok {
			bad(n.line, "node", "%s is already listed on line %d", n.name, o.line)
		}
		seenNode[n.name] = n
		for _, p := range []struct {
			col  string
			port int
		}{{"mysql", n.mysql}, {"mosquitto", n.mosquitto}, {"mongodb", n.mongodb}} {
			if p.port == 0 {
				continue
			}
			k := n.overlay + "/" + strconv.Itoa(p.port)
			if o, ok := seenPort[k]; ok {
				bad(n.line, p.col, "NodePort %d is already %s's in cluster %s", p.port, o, n.overlay)
			}
			seenPort[k] = n.name + " " + p.col
		}
		if f, ok := first[n.overlay]; !ok {
			first[n.overlay] = n
		} else if f.plant != n.plant || f.timezone != n.timezone {
			bad(n.line, "plant", "an overlay's agents share one plant label and time zone: %s has %s %s, %s on line %d has %s %s",
				n.name, n.plant, n.timezone, f.name, f.line, f.plant, f.timezone)
		}
	}
	if len(nodes) == 0 && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("%s: no nodes", file))
	}
	return nodes, errors.Join(errs...)
}

func readTable(t *testing.T) []node {
	t.Helper()
	data, err := os.ReadFile("nodes.tsv")
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := parseTable("nodes.tsv", data)
	if err != nil {
		t.Fatal(err)
	}
	return nodes
}

// byOverlay groups the table's rows, in table order.
func byOverlay(nodes []node) (names []string, m map[string][]node) {
	m = map[string][]node{}
	for _, n := range nodes {
		if _, ok := m[n.overlay]; !ok {
			names = append(names, n.overlay)
		}
		m[n.overlay] = append(m[n.overlay], n)
	}
	return names, m
}

const generatedNote = "# Generated from deploy/nodes.tsv by `go test ./deploy -run TestOverlaysMatchTable -update`:\n# edit the table, not this file.\n"

// overlayFiles are the files of overlays/<name>/ for the table's rows of that overlay.
func overlayFiles(nodes []node) map[string]string {
	first := nodes[0]
	files := map[string]string{}
	var k strings.Builder
	k.WriteString(generatedNote)
	fmt.Fprintf(&k, "# The agents on %s.\n", nodeNames(nodes, ", "))
	k.WriteString(`apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
# The generated ConfigMap and Secret must be in the base's namespace, or the DaemonSet's
# references to them are not rewritten to their hashed names.
namespace: rpt
resources:
  - ../../base
configMapGenerator:
  - name: rpt-config
    files:
      - rpt.yaml
# secrets.env is not in git: copy secrets.env.example and fill it in.
secretGenerator:
  - name: rpt-secrets
    envs:
      - secrets.env
patches:
  - path: nodes.yaml
  - path: api.yaml
  - path: cron.yaml
`)
	if first.plant != "-" {
		fmt.Fprintf(&k, `  # A pod cannot read its node's labels: the plant is set here.
  - target:
      kind: DaemonSet
      name: rpt-agent
    patch: |-
      - op: add
        path: /spec/template/spec/containers/0/args/-
        value: --label=plant=%s
`, first.plant)
	}
	files["kustomization.yaml"] = k.String()

	var p strings.Builder
	p.WriteString(generatedNote)
	p.WriteString(`# Only on these nodes; the node names resolve in the pod without cluster DNS entries.
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: rpt-agent
spec:
  template:
    spec:
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms:
              - matchExpressions:
                  - key: kubernetes.io/hostname
                    operator: In
                    values:
`)
	for _, n := range nodes {
		fmt.Fprintf(&p, "                      - %s\n", n.name)
	}
	p.WriteString("      hostAliases:\n")
	for _, n := range nodes {
		fmt.Fprintf(&p, "        - ip: %q\n          hostnames: [%s]\n", n.ip, n.name)
	}
	files["nodes.yaml"] = p.String()

	// The API's pods reach the same queue and broker by the same node names, on the same nodes.
	var api strings.Builder
	api.WriteString(generatedNote)
	api.WriteString("# The API on the same nodes as the agents; the node names resolve in the pod.\n")
	spec := "apiVersion:" + strings.SplitN(p.String(), "apiVersion:", 2)[1]
	api.WriteString(strings.Replace(spec, "kind: DaemonSet\nmetadata:\n  name: rpt-agent", "kind: Deployment\nmetadata:\n  name: rpt-api", 1))
	files["api.yaml"] = api.String()

	// The cron runner too: it submits to the same queue by the same node names.
	var cron strings.Builder
	cron.WriteString(generatedNote)
	cron.WriteString("# rpt cron run on the same nodes as the agents; the node names resolve in the pod.\n")
	cron.WriteString(strings.Replace(spec, "kind: DaemonSet\nmetadata:\n  name: rpt-agent", "kind: Deployment\nmetadata:\n  name: rpt-cron", 1))
	files["cron.yaml"] = cron.String()

	files["rpt.yaml"] = generatedNote + fmt.Sprintf(`# rpt's configuration for the agents on %s (mounted at /etc/rpt/rpt.yaml).
# The queue database and the broker are %s's MySQL (NodePort %d) and Mosquitto (NodePort %d);
# the password comes from the Secret (secrets.env), never from this file.
queue: mysql://rpt:${RPT_DB_PASSWORD}@%s:%d/rpt
mqtt: tcp://%s:%d
timezone: %s
`, nodeNames(nodes, ", "), first.name, first.mysql, first.mosquitto, first.name, first.mysql, first.name, first.mosquitto, first.timezone)

	files["secrets.env.example"] = `# Copy to secrets.env (git-ignored) and set the real value; kustomize makes it the
# rpt-secrets Secret, which the DaemonSet reads by reference (RPT_DB_PASSWORD in rpt.yaml).
RPT_DB_PASSWORD=change-me
`
	return files
}

func nodeNames(nodes []node, sep string) string {
	var s []string
	for _, n := range nodes {
		s = append(s, n.name)
	}
	return strings.Join(s, sep)
}

// TestOverlaysMatchTable: deploy/overlays is exactly what nodes.tsv generates, no overlay
// more (one for a node missing from the table is an error), no file different.
// -update rewrites them.
func TestOverlaysMatchTable(t *testing.T) {
	names, m := byOverlay(readTable(t))
	if *update {
		for _, name := range names {
			dir := filepath.Join("overlays", name)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for f, content := range overlayFiles(m[name]) {
				if err := os.WriteFile(filepath.Join(dir, f), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := compareOverlays("overlays", names, m); err != nil {
		t.Fatal(err)
	}
}

func compareOverlays(root string, names []string, m map[string][]node) error {
	var errs []error
	ents, err := os.ReadDir(root)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !slices.Contains(names, e.Name()) {
			errs = append(errs, fmt.Errorf("%s/%s: no node of nodes.tsv has overlay %q (add its nodes to the table, or remove the folder)", root, e.Name(), e.Name()))
		}
	}
	for _, name := range names {
		for f, want := range overlayFiles(m[name]) {
			p := filepath.Join(root, name, f)
			got, err := os.ReadFile(p)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %v (run go test ./deploy -run TestOverlaysMatchTable -update)", p, err))
			} else if string(got) != want {
				errs = append(errs, fmt.Errorf("%s differs from what nodes.tsv generates (run go test ./deploy -run TestOverlaysMatchTable -update)", p))
			}
		}
	}
	return errors.Join(errs...)
}

// Bad tables fail with a message naming the line and the column.
func TestTableRejectsBadInput(t *testing.T) {
	good := "3x\treports31\t172.20.88.61\t30031\t30231\t30331\t-\tAmerica/Detroit\n"
	for _, tc := range []struct{ name, table, want string }{
		{"port out of range", "3x\treports31\t172.20.88.61\t29999\t30231\t30331\t-\tAmerica/Detroit\n", "nodes.tsv:1: mysql: NodePort 29999 is outside the valid range 30000-32767"},
		{"port too high", "3x\treports31\t172.20.88.61\t30031\t32768\t-\t-\tAmerica/Detroit\n", "nodes.tsv:1: mosquitto: NodePort 32768 is outside"},
		{"duplicate port in a cluster (the original typo)", good + "3x\treports33\t172.20.88.63\t30033\t30233\t30331\t-\tAmerica/Detroit\n", "nodes.tsv:2: mongodb: NodePort 30331 is already reports31 mongodb's in cluster 3x"},
		{"missing column", "3x\treports31\t172.20.88.61\t30031\t30231\n", "nodes.tsv:1: row: want 8 tab-separated columns"},
		{"bad ip", "3x\treports31\t172.20.88\t30031\t30231\t-\t-\tAmerica/Detroit\n", "nodes.tsv:1: ip: \"172.20.88\" is not an IPv4 address"},
		{"bad node name", "3x\tReports_31\t172.20.88.61\t30031\t30231\t-\t-\tAmerica/Detroit\n", "nodes.tsv:1: node: \"Reports_31\" is not a lower-case DNS label"},
		{"node twice", good + "1x\treports31\t10.1.0.1\t30011\t30211\t-\t-\tAmerica/Detroit\n", "nodes.tsv:2: node: reports31 is already listed on line 1"},
		{"mysql cannot be absent", "3x\treports31\t172.20.88.61\t-\t30231\t-\t-\tAmerica/Detroit\n", "nodes.tsv:1: mysql: \"-\" is not a port number"},
		{"bad time zone", "3x\treports31\t172.20.88.61\t30031\t30231\t-\t-\tAmerica/Nowhere\n", "nodes.tsv:1: timezone: \"America/Nowhere\""},
		{"two plants in one overlay", good + "3x\treports32\t172.20.88.62\t30032\t30232\t30332\talbion\tAmerica/Detroit\n", "nodes.tsv:2: plant: an overlay's agents share one plant label"},
		{"empty", "# nothing\n", "nodes.tsv: no nodes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseTable("nodes.tsv", []byte(tc.table))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
	if _, err := parseTable("nodes.tsv", []byte(good)); err != nil {
		t.Fatalf("a good row: %v", err)
	}
}

// An overlay folder whose nodes are not in the table, or an overlay edited by hand, fails.
func TestOverlayCheckCatchesDrift(t *testing.T) {
	names, m := byOverlay(readTable(t))
	root := t.TempDir()
	copyDir(t, "overlays", root)
	if err := compareOverlays(root, names, m); err != nil {
		t.Fatalf("the copy should match: %v", err)
	}
	if err := os.Mkdir(filepath.Join(root, "frt-ubu"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := compareOverlays(root, names, m); err == nil || !strings.Contains(err.Error(), `no node of nodes.tsv has overlay "frt-ubu"`) {
		t.Fatalf("an overlay missing from the table: %v", err)
	}
	os.Remove(filepath.Join(root, "frt-ubu"))
	p := filepath.Join(root, names[0], "nodes.yaml")
	data, _ := os.ReadFile(p)
	os.WriteFile(p, bytes.Replace(data, []byte("- "+m[names[0]][0].name), []byte("- some-other-node"), 1), 0o644)
	if err := compareOverlays(root, names, m); err == nil || !strings.Contains(err.Error(), "nodes.yaml differs") {
		t.Fatalf("a hand-edited overlay: %v", err)
	}
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(target)
		if err != nil {
			return err
		}
		defer out.Close()
		_, err = io.Copy(out, in)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// renderOverlay runs kubectl kustomize on a copy of deploy/ in which every secrets.env is
// its example (the real ones are not in git), and returns the objects.
func renderOverlay(t *testing.T, kubectl, name string) []map[string]any {
	t.Helper()
	root := t.TempDir()
	copyDir(t, "base", filepath.Join(root, "base"))
	copyDir(t, filepath.Join("overlays", name), filepath.Join(root, "overlays", name))
	ex := filepath.Join(root, "overlays", name, "secrets.env.example")
	data, err := os.ReadFile(ex)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(strings.TrimSuffix(ex, ".example"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(kubectl, "kustomize", filepath.Join(root, "overlays", name)).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize overlays/%s: %v\n%s", name, err, out)
	}
	var objs []map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(out))
	for {
		var o map[string]any
		if err := dec.Decode(&o); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("overlays/%s: %v", name, err)
		}
		if o != nil {
			objs = append(objs, o)
		}
	}
	return objs
}

// agentFlags are the flags `rpt agent` accepts, read from the built binary's help.
func agentFlags(t *testing.T) map[string]bool {
	t.Helper()
	out, err := exec.Command(builtBinary(t), "agent", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("rpt agent --help: %v\n%s", err, out)
	}
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+--([a-z][-a-z]*)`).FindAllStringSubmatch(string(out), -1) {
		flags[m[1]] = true
	}
	if !flags["listen"] || !flags["grace"] {
		t.Fatalf("rpt agent --help lists no --listen or --grace:\n%s", out)
	}
	return flags
}

func kubectlOrSkip(t *testing.T) string {
	k, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not installed: the overlays are not rendered (install kubectl to run this test)")
	}
	return k
}

// TestOverlaysRender renders every overlay and checks the rules of checkOverlay.
func TestOverlaysRender(t *testing.T) {
	kubectl := kubectlOrSkip(t)
	names, m := byOverlay(readTable(t))
	flags := agentFlags(t)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			objs := renderOverlay(t, kubectl, name)
			for _, err := range checkOverlay(objs, m[name], flags) {
				t.Error(err)
			}
		})
	}
}

// TestOverlayRulesFail breaks each rule on purpose in a rendered overlay and expects
// checkOverlay to name it: every rule can fail.
func TestOverlayRulesFail(t *testing.T) {
	kubectl := kubectlOrSkip(t)
	names, m := byOverlay(readTable(t))
	flags := agentFlags(t)
	// alb-ubu has a plant label; use it so the plant rule is exercised too.
	name := names[len(names)-2]
	if m[name][0].plant == "-" {
		t.Fatalf("want an overlay with a plant label, %s has none", name)
	}
	pristine := renderOverlay(t, kubectl, name)
	if errs := checkOverlay(pristine, m[name], flags); len(errs) != 0 {
		t.Fatalf("the unbroken overlay fails: %v", errs)
	}
	for _, tc := range []struct {
		rule   string
		want   string
		break_ func(objs []map[string]any, ds, c map[string]any)
	}{
		{"affinity", "affinity", func(_ []map[string]any, ds, _ map[string]any) {
			set(ds, "spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms.0.matchExpressions.0.values", []any{"reports99"})
		}},
		{"host aliases", "hostAliases", func(_ []map[string]any, ds, _ map[string]any) {
			set(ds, "spec.template.spec.hostAliases.0.ip", "10.9.9.9")
		}},
		{"queue port", "queue", func(objs []map[string]any, _, _ map[string]any) {
			cm := rptConfig(objs)
			cm["data"].(map[string]any)["rpt.yaml"] = strings.Replace(cm["data"].(map[string]any)["rpt.yaml"].(string), ":30101/", ":30102/", 1)
		}},
		{"broker port", "mqtt", func(objs []map[string]any, _, _ map[string]any) {
			cm := rptConfig(objs)
			cm["data"].(map[string]any)["rpt.yaml"] = strings.Replace(cm["data"].(map[string]any)["rpt.yaml"].(string), ":30111", ":40111", 1)
		}},
		{"literal password in config", "literal password", func(objs []map[string]any, _, _ map[string]any) {
			cm := rptConfig(objs)
			cm["data"].(map[string]any)["rpt.yaml"] = strings.Replace(cm["data"].(map[string]any)["rpt.yaml"].(string), "${RPT_DB_PASSWORD}", "hunter2", 1)
		}},
		{"secret value in env", "literal value", func(_ []map[string]any, _, c map[string]any) {
			c["env"] = append(c["env"].([]any), map[string]any{"name": "RPT_DB_PASSWORD", "value": "hunter2"})
		}},
		{"secret not from the example", "Secret", func(objs []map[string]any, _, _ map[string]any) {
			find(objs, "Secret")["data"].(map[string]any)["RPT_DB_PASSWORD"] = base64.StdEncoding.EncodeToString([]byte("hunter2"))
		}},
		{"config not generated", "configMapGenerator", func(_ []map[string]any, ds, _ map[string]any) {
			set(ds, "spec.template.spec.volumes.0.configMap.name", "rpt-config")
		}},
		{"image not pinned", "image", func(_ []map[string]any, _, c map[string]any) { c["image"] = "registry.local/rpt:latest" }},
		{"image without tag", "image", func(_ []map[string]any, _, c map[string]any) { c["image"] = "registry.local/rpt" }},
		{"no liveness", "livenessProbe", func(_ []map[string]any, _, c map[string]any) { delete(c, "livenessProbe") }},
		{"readiness in liveness", "livenessProbe", func(_ []map[string]any, _, c map[string]any) {
			set(c, "livenessProbe.httpGet.path", "/readyz")
		}},
		{"readiness path", "readinessProbe", func(_ []map[string]any, _, c map[string]any) {
			set(c, "readinessProbe.httpGet.path", "/healthz")
		}},
		{"probe port", "port", func(_ []map[string]any, _, c map[string]any) {
			set(c, "ports.0.containerPort", 8080)
		}},
		{"unknown flag", "--concurency", func(_ []map[string]any, _, c map[string]any) {
			c["args"] = append(c["args"].([]any), "--concurency=4")
		}},
		{"bad duration", "--grace", func(_ []map[string]any, _, c map[string]any) {
			c["args"].([]any)[2] = "--grace=30"
		}},
		{"grace too short", "terminationGracePeriodSeconds", func(_ []map[string]any, ds, _ map[string]any) {
			set(ds, "spec.template.spec.terminationGracePeriodSeconds", 30)
		}},
		{"plant label", "plant", func(_ []map[string]any, _, c map[string]any) {
			args := c["args"].([]any)
			c["args"] = args[:len(args)-1]
		}},
		{"agent name from the pod", "RPT_AGENT_NAME", func(_ []map[string]any, _, c map[string]any) {
			for _, e := range c["env"].([]any) {
				if e.(map[string]any)["name"] == "RPT_AGENT_NAME" {
					set(e.(map[string]any), "valueFrom.fieldRef.fieldPath", "metadata.name")
				}
			}
		}},
		{"root", "runAsNonRoot", func(_ []map[string]any, _, c map[string]any) { set(c, "securityContext.runAsNonRoot", false) }},
		{"writable root", "readOnlyRootFilesystem", func(_ []map[string]any, _, c map[string]any) {
			set(c, "securityContext.readOnlyRootFilesystem", false)
		}},
		{"capabilities", "drop ALL", func(_ []map[string]any, _, c map[string]any) {
			set(c, "securityContext.capabilities.drop", []any{"NET_RAW"})
		}},
		{"seccomp", "seccomp", func(_ []map[string]any, ds, _ map[string]any) {
			delete(get(ds, "spec.template.spec.securityContext").(map[string]any), "seccompProfile")
		}},
		{"no tmp emptyDir", "/tmp", func(_ []map[string]any, _, c map[string]any) { set(c, "volumeMounts.1.mountPath", "/scratch") }},
		{"resources", "resources", func(_ []map[string]any, _, c map[string]any) { delete(c["resources"].(map[string]any), "limits") }},
		{"rolling update", "maxUnavailable", func(_ []map[string]any, ds, _ map[string]any) {
			set(ds, "spec.updateStrategy.rollingUpdate.maxUnavailable", 3)
		}},
		{"scrape annotations", "prometheus.io", func(_ []map[string]any, ds, _ map[string]any) {
			delete(get(ds, "spec.template.metadata.annotations").(map[string]any), "prometheus.io/port")
		}},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			objs := deepCopy(pristine)
			ds := find(objs, "DaemonSet")
			c := get(ds, "spec.template.spec.containers.0").(map[string]any)
			tc.break_(objs, ds, c)
			errs := checkOverlay(objs, m[name], flags)
			for _, err := range errs {
				if strings.Contains(err.Error(), tc.want) {
					return
				}
			}
			t.Fatalf("broke %s: errors %v, want one mentioning %q", tc.rule, errs, tc.want)
		})
	}
}

func deepCopy(objs []map[string]any) []map[string]any {
	data, _ := yaml.Marshal(objs)
	var out []map[string]any
	yaml.Unmarshal(data, &out)
	return out
}

// rptConfig is the agents' generated ConfigMap (rpt-config-HASH), not another one the
// overlay also generates (the cron runner's rpt-crontab-HASH).
func rptConfig(objs []map[string]any) map[string]any {
	for _, o := range objs {
		if o["kind"] == "ConfigMap" && strings.HasPrefix(str(get(o, "metadata.name")), "rpt-config") {
			return o
		}
	}
	return nil
}

func find(objs []map[string]any, kind string) map[string]any {
	for _, o := range objs {
		if o["kind"] == kind {
			return o
		}
	}
	return nil
}

// get follows a dotted path through maps and lists (numeric parts index lists).
func get(v any, path string) any {
	for _, p := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func set(v any, path string, val any) {
	parts := strings.Split(path, ".")
	parent := get(v, strings.Join(parts[:len(parts)-1], "."))
	if len(parts) == 1 {
		parent = v
	}
	last := parts[len(parts)-1]
	switch x := parent.(type) {
	case map[string]any:
		x[last] = val
	case []any:
		i, _ := strconv.Atoi(last)
		x[i] = val
	default:
		panic("set " + path + ": no such parent")
	}
}

func str(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

var (
	queueRe = regexp.MustCompile(`(?m)^queue: mysql://([^:@/]+)(?::([^@]*))?@([^:/]+):(\d+)/\S+$`)
	mqttRe  = regexp.MustCompile(`(?m)^mqtt: tcp://([^:/]+):(\d+)$`)
	tagRe   = regexp.MustCompile(`^[^@]+:[\w][\w.-]*$|@sha256:[0-9a-f]{64}$`)
)

// checkOverlay returns every rule a rendered overlay breaks. nodes are its table rows.
func checkOverlay(objs []map[string]any, nodes []node, agentFlags map[string]bool) []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	ds := find(objs, "DaemonSet")
	if ds == nil {
		return []error{fmt.Errorf("no DaemonSet")}
	}
	pod := get(ds, "spec.template.spec")
	c, _ := get(pod, "containers.0").(map[string]any)
	if c == nil {
		return []error{fmt.Errorf("DaemonSet has no container")}
	}

	// Affinity: exactly the table's nodes of this overlay.
	var want []string
	for _, n := range nodes {
		want = append(want, n.name)
	}
	sort.Strings(want)
	var got []string
	terms, _ := get(pod, "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms").([]any)
	if len(terms) != 1 {
		bad("affinity: want one required node selector term, got %d", len(terms))
	} else {
		exprs, _ := get(terms[0], "matchExpressions").([]any)
		for _, e := range exprs {
			if get(e, "key") != "kubernetes.io/hostname" || get(e, "operator") != "In" {
				bad("affinity: want kubernetes.io/hostname In, got %v", e)
				continue
			}
			vals, _ := get(e, "values").([]any)
			for _, v := range vals {
				got = append(got, str(v))
			}
		}
	}
	sort.Strings(got)
	if !slices.Equal(got, want) {
		bad("affinity: nodes %v, want the table's %v", got, want)
	}

	// Host aliases: every node name resolves to the table's address.
	aliases := map[string]string{}
	hal, _ := get(pod, "hostAliases").([]any)
	for _, h := range hal {
		for _, hn := range get(h, "hostnames").([]any) {
			aliases[str(hn)] = str(get(h, "ip"))
		}
	}
	for _, n := range nodes {
		if aliases[n.name] != n.ip {
			bad("hostAliases: %s -> %q, want %s from the table", n.name, aliases[n.name], n.ip)
		}
	}

	// The config: queue and broker on the first node's NodePorts, the password by reference.
	cm := rptConfig(objs)
	cfg := ""
	if data, ok := get(cm, "data").(map[string]any); ok {
		cfg = str(data["rpt.yaml"])
	}
	if cm == nil || cfg == "" {
		bad("no ConfigMap with rpt.yaml")
	}
	first := nodes[0]
	if m := queueRe.FindStringSubmatch(cfg); m == nil {
		bad("config: no queue: mysql://user:password@host:port/db line in rpt.yaml")
	} else {
		if m[3] != first.name || m[4] != strconv.Itoa(first.mysql) {
			bad("config: queue at %s:%s, want %s:%d (the table's MySQL NodePort)", m[3], m[4], first.name, first.mysql)
		}
		if p, _ := strconv.Atoi(m[4]); p < minNodePort || p > maxNodePort {
			bad("config: queue port %d outside %d-%d", p, minNodePort, maxNodePort)
		}
		if m[2] != "" && !regexp.MustCompile(`^\$\{\w+\}$`).MatchString(m[2]) {
			bad("config: a literal password in the queue DSN of rpt.yaml: use ${VAR} from the Secret")
		}
	}
	if m := mqttRe.FindStringSubmatch(cfg); m == nil {
		bad("config: no mqtt: tcp://host:port line in rpt.yaml")
	} else if m[1] != first.name || m[2] != strconv.Itoa(first.mosquitto) {
		bad("config: mqtt at %s:%s, want %s:%d (the table's Mosquitto NodePort)", m[1], m[2], first.name, first.mosquitto)
	}
	// The config mount is the generated ConfigMap (name with a content hash), so a change
	// is a rollout and old pods keep their config.
	cmName := str(get(cm, "metadata.name"))
	vol := ""
	for _, v := range get(pod, "volumes").([]any) {
		if n := str(get(v, "configMap.name")); n != "" {
			vol = n
		}
	}
	if vol != cmName || !strings.HasPrefix(cmName, "rpt-config-") {
		bad("config volume %q, want the configMapGenerator's hashed %q", vol, cmName)
	}

	// Secrets: only by reference; the generated Secret holds only what the example holds.
	for _, e := range c["env"].([]any) {
		name := str(get(e, "name"))
		if regexp.MustCompile(`(?i)pass|secret|token|key`).MatchString(name) && get(e, "value") != nil {
			bad("env %s: a literal value; secrets come from a secretKeyRef", name)
		}
	}
	for _, o := range objs {
		if o["kind"] != "Secret" {
			continue
		}
		if o["stringData"] != nil {
			bad("Secret %s: stringData inlined in the manifests", get(o, "metadata.name"))
		}
		for k, v := range get(o, "data").(map[string]any) {
			val, _ := base64.StdEncoding.DecodeString(str(v))
			if string(val) != "change-me" {
				bad("Secret %s: %s is not the example's placeholder: a value is inlined in the manifests", get(o, "metadata.name"), k)
			}
		}
	}

	// Image: pinned by a tag other than latest, or by digest.
	img := str(c["image"])
	if !tagRe.MatchString(img) || strings.HasSuffix(img, ":latest") {
		bad("image %q: pin a version tag or digest", img)
	}

	// Args: flags the real rpt agent has; durations parse; the grace covers the drain.
	args := []string{}
	for _, a := range c["args"].([]any) {
		args = append(args, str(a))
	}
	flagVal := map[string]string{}
	if len(args) == 0 || args[0] != "agent" {
		bad("args %q: want rpt agent", args)
	} else {
		for _, a := range args[1:] {
			name, val, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
			if !strings.HasPrefix(a, "--") || !agentFlags[name] {
				bad("args: %s is not a flag of rpt agent", a)
				continue
			}
			flagVal[name] = val
		}
	}
	dur := func(name string, def time.Duration) time.Duration {
		v, ok := flagVal[name]
		if !ok {
			return def
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			bad("args: --%s=%s: %v", name, v, err)
		}
		return d
	}
	grace, lease := dur("grace", 30*time.Second), dur("lease", 30*time.Second)
	// Grace, then the release phase (max(lease, 5s)), then 5s more for queries that do
	// not stop, then 2s to flush the last events (agent.shutdown, cli.runAgent).
	need := grace + max(lease, 5*time.Second) + 5*time.Second + 2*time.Second
	tgp, _ := get(pod, "terminationGracePeriodSeconds").(int)
	if time.Duration(tgp)*time.Second < need {
		bad("terminationGracePeriodSeconds %d < %s (grace %s + release max(lease %s, 5s) + 5s + 2s)", tgp, need, grace, lease)
	}
	if p := first.plant; p != "-" {
		if !slices.Contains(args, "--label=plant="+p) {
			bad("args %q: no --label=plant=%s (the table's plant)", args, p)
		}
	} else if slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--label=plant=") }) {
		bad("args %q: a plant label the table does not give", args)
	}

	// Probes: /healthz for liveness (never /readyz: a database outage must not restart
	// agents), /readyz for readiness, on the port --listen serves.
	_, listenPort, _ := net.SplitHostPort(flagVal["listen"])
	ports := map[string]string{}
	for _, p := range c["ports"].([]any) {
		ports[str(get(p, "name"))] = str(get(p, "containerPort"))
	}
	probe := func(kind, path string) {
		p := get(c, kind+".httpGet")
		if p == nil {
			bad("%s: missing", kind)
			return
		}
		if str(get(p, "path")) != path {
			bad("%s: path %s, want %s", kind, get(p, "path"), path)
		}
		port := str(get(p, "port"))
		if named, ok := ports[port]; ok {
			port = named
		}
		if port != listenPort || listenPort == "" {
			bad("%s: port %s, but --listen serves %q", kind, port, listenPort)
		}
	}
	probe("livenessProbe", "/healthz")
	probe("readinessProbe", "/readyz")
	if get(c, "startupProbe") != nil {
		probe("startupProbe", "/healthz")
	}
	ann, _ := get(ds, "spec.template.metadata.annotations").(map[string]any)
	if str(ann["prometheus.io/scrape"]) != "true" || str(ann["prometheus.io/path"]) != "/metrics" || str(ann["prometheus.io/port"]) != listenPort {
		bad("prometheus.io annotations %v: want scrape true, path /metrics, port %s", ann, listenPort)
	}

	// The agent's name is the node's.
	nameFromNode := false
	for _, e := range c["env"].([]any) {
		if get(e, "name") == "RPT_AGENT_NAME" && get(e, "valueFrom.fieldRef.fieldPath") == "spec.nodeName" {
			nameFromNode = true
		}
	}
	if !nameFromNode {
		bad("env RPT_AGENT_NAME: want valueFrom fieldRef spec.nodeName")
	}

	// Security and resources.
	if get(c, "securityContext.runAsNonRoot") != true {
		bad("securityContext.runAsNonRoot: want true")
	}
	if get(c, "securityContext.readOnlyRootFilesystem") != true {
		bad("securityContext.readOnlyRootFilesystem: want true")
	}
	if get(c, "securityContext.allowPrivilegeEscalation") != false {
		bad("securityContext.allowPrivilegeEscalation: want false")
	}
	if d, _ := get(c, "securityContext.capabilities.drop").([]any); !slices.Contains(d, any("ALL")) {
		bad("securityContext.capabilities: want drop ALL")
	}
	if str(get(pod, "securityContext.seccompProfile.type")) != "RuntimeDefault" {
		bad("pod securityContext: want seccompProfile RuntimeDefault")
	}
	tmpOK := false
	for _, vm := range c["volumeMounts"].([]any) {
		if get(vm, "mountPath") == "/tmp" {
			for _, v := range get(pod, "volumes").([]any) {
				if get(v, "name") == get(vm, "name") && get(v, "emptyDir") != nil {
					tmpOK = true
				}
			}
		}
	}
	if !tmpOK {
		bad("no emptyDir mounted at /tmp (the root filesystem is read-only)")
	}
	for _, k := range []string{"requests.cpu", "requests.memory", "limits.cpu", "limits.memory"} {
		if get(c, "resources."+k) == nil {
			bad("resources.%s: not set", k)
		}
	}
	if str(get(ds, "spec.updateStrategy.type")) != "RollingUpdate" || str(get(ds, "spec.updateStrategy.rollingUpdate.maxUnavailable")) != "1" {
		bad("updateStrategy: want RollingUpdate with maxUnavailable 1 (one node at a time)")
	}
	return errs
}

// Every overlay's secrets.env is git-ignored and has its example beside it.
func TestSecretsEnvIgnored(t *testing.T) {
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git not installed")
	}
	names, _ := byOverlay(readTable(t))
	for _, name := range names {
		p := filepath.Join("overlays", name, "secrets.env")
		if out, err := exec.Command(git, "check-ignore", "-q", p).CombinedOutput(); err != nil {
			t.Errorf("%s is not git-ignored: %v %s", p, err, out)
		}
		if _, err := os.Stat(p + ".example"); err != nil {
			t.Errorf("%s.example: %v", p, err)
		}
	}
}
