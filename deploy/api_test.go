package deploy_test

import (
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// apiFlags are the flags `rpt api` accepts, read from the built binary's help.
func apiFlags(t *testing.T) map[string]bool {
	t.Helper()
	out, err := exec.Command(builtBinary(t), "api", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("rpt api --help: %v\n%s", err, out)
	}
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+--([a-z][-a-z]*)`).FindAllStringSubmatch(string(out), -1) {
		flags[m[1]] = true
	}
	if !flags["listen"] {
		t.Fatalf("rpt api --help lists no --listen:\n%s", out)
	}
	return flags
}

func findNamed(objs []map[string]any, kind, name string) map[string]any {
	for _, o := range objs {
		if o["kind"] == kind && str(get(o, "metadata.name")) == name {
			return o
		}
	}
	return nil
}

func toInt(v any) (int, bool) {
	switch x := v.(type) {
	case int:
		return x, true
	case float64:
		return int(x), true
	case string:
		n, err := strconv.Atoi(x)
		return n, err == nil
	}
	return 0, false
}

// checkAPI returns every rule the rendered rpt api Deployment, its Service and its
// PodDisruptionBudget break. nodes are the overlay's table rows.
func checkAPI(objs []map[string]any, nodes []node, flags map[string]bool) []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf("rpt-api: "+format, a...)) }
	dep := findNamed(objs, "Deployment", "rpt-api")
	if dep == nil {
		return []error{fmt.Errorf("rpt-api: no Deployment")}
	}
	pod := get(dep, "spec.template.spec")
	c, _ := get(pod, "containers.0").(map[string]any)
	if c == nil {
		return []error{fmt.Errorf("rpt-api: Deployment has no container")}
	}
	labels, _ := get(dep, "spec.selector.matchLabels").(map[string]any)
	if len(labels) == 0 {
		bad("Deployment has no selector")
	}
	podLabels, _ := get(dep, "spec.template.metadata.labels").(map[string]any)
	for k, v := range labels {
		if str(podLabels[k]) != str(v) {
			bad("pod template lacks the selector's label %s=%v", k, v)
		}
	}

	// Replicas and rollout: two or more, replaced one at a time without going below.
	replicas, _ := toInt(get(dep, "spec.replicas"))
	if replicas < 2 {
		bad("replicas %d: want at least 2, so a rollout or a node drain leaves one answering", replicas)
	}
	if mu, ok := toInt(get(dep, "spec.strategy.rollingUpdate.maxUnavailable")); !ok || mu != 0 {
		bad("strategy.rollingUpdate.maxUnavailable %v: want 0 (a new replica is ready before an old one goes)", get(dep, "spec.strategy.rollingUpdate.maxUnavailable"))
	}

	// The PodDisruptionBudget selects these pods and lets at most one go at a time.
	pdb := findNamed(objs, "PodDisruptionBudget", "rpt-api")
	if pdb == nil {
		bad("no PodDisruptionBudget")
	} else {
		sel, _ := get(pdb, "spec.selector.matchLabels").(map[string]any)
		if fmt.Sprint(sel) != fmt.Sprint(labels) {
			bad("PodDisruptionBudget selects %v, the Deployment's pods are %v", sel, labels)
		}
		maxU, hasMax := toInt(get(pdb, "spec.maxUnavailable"))
		minA, hasMin := toInt(get(pdb, "spec.minAvailable"))
		switch {
		case hasMax && maxU == 1:
		case hasMin && minA >= 1 && minA < replicas:
		default:
			bad("PodDisruptionBudget: want maxUnavailable 1 or 1 <= minAvailable < replicas, got maxUnavailable %v minAvailable %v",
				get(pdb, "spec.maxUnavailable"), get(pdb, "spec.minAvailable"))
		}
	}

	// Image: pinned, and the agents' (one version of rpt per overlay).
	image := str(c["image"])
	if !tagRe.MatchString(image) || strings.HasSuffix(image, ":latest") {
		bad("image %q is not pinned to a tag or digest", image)
	}
	if ds := find(objs, "DaemonSet"); ds != nil {
		if di := str(get(ds, "spec.template.spec.containers.0.image")); di != image {
			bad("image %q, the agents run %q", image, di)
		}
	}

	// Args: rpt api with flags it has; the listen port is the container's.
	args, _ := c["args"].([]any)
	port := ""
	if len(args) == 0 || str(args[0]) != "api" {
		bad("args %v: want api first", args)
	}
	for _, a := range args[min(1, len(args)):] {
		name, val, _ := strings.Cut(strings.TrimPrefix(str(a), "--"), "=")
		if !strings.HasPrefix(str(a), "--") || !flags[name] {
			bad("arg %q is not a flag of rpt api", a)
		}
		if name == "listen" {
			_, port, _ = strings.Cut(val, ":")
		}
	}
	ports := map[string]string{} // name -> number
	for _, p := range get(c, "ports").([]any) {
		ports[str(get(p, "name"))] = str(get(p, "containerPort"))
	}
	portOf := func(ref any) string {
		if p, ok := ports[str(ref)]; ok {
			return p
		}
		return str(ref)
	}
	if port == "" || !slices.Contains(mapsValues(ports), port) {
		bad("--listen port %q is not a container port %v", port, ports)
	}

	// Probes: readiness is the API's healthz (it asks the queue database); liveness never
	// is, or a database outage would restart every replica.
	if get(c, "readinessProbe.httpGet.path") != "/api/v1/healthz" || portOf(get(c, "readinessProbe.httpGet.port")) != port {
		bad("readinessProbe: want GET /api/v1/healthz on the listen port %s, got %v", port, get(c, "readinessProbe"))
	}
	switch {
	case get(c, "livenessProbe") == nil:
		bad("no livenessProbe")
	case get(c, "livenessProbe.httpGet.path") == "/api/v1/healthz":
		bad("livenessProbe on /api/v1/healthz: a queue database outage would restart every replica")
	case portOf(get(c, "livenessProbe.tcpSocket.port")) != port && portOf(get(c, "livenessProbe.httpGet.port")) != port:
		bad("livenessProbe not on the listen port %s", port)
	}

	// The Service reaches the pods on the listen port.
	svc := findNamed(objs, "Service", "rpt-api")
	if svc == nil {
		bad("no Service")
	} else {
		if sel, _ := get(svc, "spec.selector").(map[string]any); fmt.Sprint(sel) != fmt.Sprint(labels) {
			bad("Service selects %v, the pods are %v", sel, labels)
		}
		if tp := portOf(get(svc, "spec.ports.0.targetPort")); tp != port {
			bad("Service targets port %s, the API listens on %s", tp, port)
		}
	}

	// Config, secrets, security, resources: as the agents'.
	cmName := str(get(rptConfig(objs), "metadata.name"))
	vol := ""
	for _, v := range get(pod, "volumes").([]any) {
		if n := str(get(v, "configMap.name")); n != "" {
			vol = n
		}
	}
	if vol != cmName || !strings.HasPrefix(cmName, "rpt-config-") {
		bad("config volume %q, want the configMapGenerator's hashed %q", vol, cmName)
	}
	for _, e := range get(c, "env").([]any) {
		if strings.Contains(str(get(e, "name")), "PASSWORD") && get(e, "value") != nil {
			bad("env %s has a literal value: take it from the Secret (valueFrom.secretKeyRef)", get(e, "name"))
		}
	}
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

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func mapsValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// TestAPIRender renders every overlay and checks the rpt api Deployment, Service and
// PodDisruptionBudget.
func TestAPIRender(t *testing.T) {
	kubectl := kubectlOrSkip(t)
	names, m := byOverlay(readTable(t))
	flags := apiFlags(t)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			for _, err := range checkAPI(renderOverlay(t, kubectl, name), m[name], flags) {
				t.Error(err)
			}
		})
	}
}

// TestAPIRulesFail breaks each rule on purpose and expects checkAPI to name it.
func TestAPIRulesFail(t *testing.T) {
	kubectl := kubectlOrSkip(t)
	names, m := byOverlay(readTable(t))
	flags := apiFlags(t)
	name := names[0]
	pristine := renderOverlay(t, kubectl, name)
	if errs := checkAPI(pristine, m[name], flags); len(errs) != 0 {
		t.Fatalf("the unbroken overlay fails: %v", errs)
	}
	for _, tc := range []struct {
		rule   string
		want   string
		break_ func(objs []map[string]any, dep, c map[string]any) []map[string]any
	}{
		{"no deployment", "no Deployment", func(objs []map[string]any, dep, _ map[string]any) []map[string]any {
			dep["kind"] = "StatefulSet"
			return objs
		}},
		{"one replica", "replicas", func(objs []map[string]any, dep, _ map[string]any) []map[string]any {
			set(dep, "spec.replicas", 1)
			return objs
		}},
		{"rollout below capacity", "maxUnavailable", func(objs []map[string]any, dep, _ map[string]any) []map[string]any {
			set(dep, "spec.strategy.rollingUpdate.maxUnavailable", 1)
			return objs
		}},
		{"no PDB", "no PodDisruptionBudget", func(objs []map[string]any, _, _ map[string]any) []map[string]any {
			return slices.DeleteFunc(objs, func(o map[string]any) bool { return o["kind"] == "PodDisruptionBudget" })
		}},
		{"PDB selects nothing", "PodDisruptionBudget selects", func(objs []map[string]any, _, _ map[string]any) []map[string]any {
			set(findNamed(objs, "PodDisruptionBudget", "rpt-api"), "spec.selector.matchLabels", map[string]any{"app.kubernetes.io/name": "rpt-agent"})
			return objs
		}},
		{"PDB allows all", "maxUnavailable 1", func(objs []map[string]any, _, _ map[string]any) []map[string]any {
			set(findNamed(objs, "PodDisruptionBudget", "rpt-api"), "spec.maxUnavailable", 2)
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
		{"unknown flag", "not a flag of rpt api", func(objs []map[string]any, _, c map[string]any) []map[string]any {
			c["args"] = append(c["args"].([]any), "--grace=30s")
			return objs
		}},
		{"listen port", "container port", func(objs []map[string]any, _, c map[string]any) []map[string]any {
			c["args"].([]any)[1] = "--listen=:9090"
			return objs
		}},
		{"readiness path", "readinessProbe", func(objs []map[string]any, _, c map[string]any) []map[string]any {
			set(c, "readinessProbe.httpGet.path", "/")
			return objs
		}},
		{"liveness on the database", "livenessProbe on /api/v1/healthz", func(objs []map[string]any, _, c map[string]any) []map[string]any {
			c["livenessProbe"] = map[string]any{"httpGet": map[string]any{"path": "/api/v1/healthz", "port": "http"}}
			return objs
		}},
		{"no liveness", "no livenessProbe", func(objs []map[string]any, _, c map[string]any) []map[string]any {
			delete(c, "livenessProbe")
			return objs
		}},
		{"service port", "Service targets", func(objs []map[string]any, _, _ map[string]any) []map[string]any {
			set(findNamed(objs, "Service", "rpt-api"), "spec.ports.0.targetPort", 9999)
			return objs
		}},
		{"literal password", "literal value", func(objs []map[string]any, _, c map[string]any) []map[string]any {
			c["env"] = append(c["env"].([]any), map[string]any{"name": "RPT_DB_PASSWORD", "value": "hunter2"})
			return objs
		}},
		{"config not generated", "configMapGenerator", func(objs []map[string]any, dep, _ map[string]any) []map[string]any {
			set(dep, "spec.template.spec.volumes.0.configMap.name", "rpt-config")
			return objs
		}},
		{"writable root", "readOnlyRootFilesystem", func(objs []map[string]any, _, c map[string]any) []map[string]any {
			set(c, "securityContext.readOnlyRootFilesystem", false)
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
			dep := findNamed(objs, "Deployment", "rpt-api")
			c := get(dep, "spec.template.spec.containers.0").(map[string]any)
			objs = tc.break_(objs, dep, c)
			errs := checkAPI(objs, m[name], flags)
			for _, err := range errs {
				if strings.Contains(err.Error(), tc.want) {
					return
				}
			}
			t.Fatalf("broke %s: errors %v, want one mentioning %q", tc.rule, errs, tc.want)
		})
	}
}
