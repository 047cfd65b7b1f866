package manifests

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// table reads ../nodes.tsv: the overlays in order and each one's node names.
func table(t *testing.T) (names []string, nodes map[string][]string) {
	t.Helper()
	f, err := os.Open("../nodes.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	nodes = map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		col := strings.Split(l, "\t")
		if len(col) < 2 {
			t.Fatalf("../nodes.tsv: %q: want tab-separated columns", l)
		}
		if _, ok := nodes[col[0]]; !ok {
			names = append(names, col[0])
		}
		nodes[col[0]] = append(nodes[col[0]], col[1])
	}
	if len(names) == 0 {
		t.Fatal("../nodes.tsv lists no overlay")
	}
	return names, nodes
}

// memFS is deploy/base and deploy/overlays/<name> in memory, secrets.env being its example
// (the real one is not in git). edit, when set, changes a file's content on the way.
func memFS(t *testing.T, name string, edit func(path string, data []byte) []byte) filesys.FileSystem {
	t.Helper()
	mem := filesys.MakeFsInMemory()
	for _, dir := range []string{"base", filepath.Join("overlays", name)} {
		err := filepath.WalkDir(filepath.Join("..", dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel("..", p)
			if edit != nil {
				data = edit(rel, data)
			}
			dst := filepath.Join("/deploy", rel)
			if err := mem.MkdirAll(filepath.Dir(dst)); err != nil {
				return err
			}
			if strings.HasSuffix(dst, "secrets.env.example") {
				if err := mem.WriteFile(strings.TrimSuffix(dst, ".example"), data); err != nil {
					return err
				}
			}
			return mem.WriteFile(dst, data)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return mem
}

func build(t *testing.T, mem filesys.FileSystem, name string) (resmap.ResMap, error) {
	t.Helper()
	return krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(mem, "/deploy/overlays/"+name)
}

// objects are an overlay's objects decoded strictly into their k8s.io/api types.
type objects struct {
	daemonSets  []*appsv1.DaemonSet
	deployments []*appsv1.Deployment
	configMaps  []*corev1.ConfigMap
	secrets     []*corev1.Secret
	ids         []string // kind/namespace/name of every object
}

// decode decodes every object strictly: an unknown or misspelt field, or a kind
// these tests do not know, is an error.
func decode(m resmap.ResMap) (*objects, error) {
	o := &objects{}
	for _, r := range m.Resources() {
		data, err := r.AsYAML()
		if err != nil {
			return nil, err
		}
		id := r.GetKind() + "/" + r.GetNamespace() + "/" + r.GetName()
		o.ids = append(o.ids, id)
		var obj any
		switch r.GetKind() {
		case "DaemonSet":
			x := &appsv1.DaemonSet{}
			o.daemonSets, obj = append(o.daemonSets, x), x
		case "Deployment":
			x := &appsv1.Deployment{}
			o.deployments, obj = append(o.deployments, x), x
		case "ConfigMap":
			x := &corev1.ConfigMap{}
			o.configMaps, obj = append(o.configMaps, x), x
		case "Secret":
			x := &corev1.Secret{}
			o.secrets, obj = append(o.secrets, x), x
		case "Namespace":
			obj = &corev1.Namespace{}
		case "ServiceAccount":
			obj = &corev1.ServiceAccount{}
		case "Service":
			obj = &corev1.Service{}
		case "PodDisruptionBudget":
			obj = &policyv1.PodDisruptionBudget{}
		default:
			return nil, fmt.Errorf("%s: a kind these tests do not decode: add it", id)
		}
		if err := yaml.UnmarshalStrict(data, obj); err != nil {
			return nil, fmt.Errorf("%s: %v", id, err)
		}
	}
	sort.Strings(o.ids)
	return o, nil
}

var (
	pinnedRe   = regexp.MustCompile(`^[^@]+:[\w][\w.-]*$|@sha256:[0-9a-f]{64}$`)
	literalPwd = regexp.MustCompile(`://[^:@/\s]+:([^@\s]+)@`)
)

// check returns every rule the decoded objects break; nodes are the table's for the overlay.
func check(o *objects, nodes []string) []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	type tmpl struct {
		id   string
		spec corev1.PodSpec
	}
	var pods []tmpl
	for _, d := range o.daemonSets {
		pods = append(pods, tmpl{"DaemonSet/" + d.Name, d.Spec.Template.Spec})
	}
	for _, d := range o.deployments {
		pods = append(pods, tmpl{"Deployment/" + d.Name, d.Spec.Template.Spec})
	}
	if len(o.daemonSets) != 1 {
		bad("%d DaemonSets, want the agents' one", len(o.daemonSets))
	}
	want := slices.Sorted(slices.Values(nodes))
	for _, p := range pods {
		var got []string
		if a := p.spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
			for _, term := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
				for _, e := range term.MatchExpressions {
					if e.Key == "kubernetes.io/hostname" && e.Operator == corev1.NodeSelectorOpIn {
						got = append(got, e.Values...)
					}
				}
			}
		}
		sort.Strings(got)
		if !slices.Equal(got, want) {
			bad("%s: affinity on %v, want the table's %v", p.id, got, want)
		}
		sc := p.spec.SecurityContext
		if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			bad("%s: pod securityContext: want runAsNonRoot and seccomp RuntimeDefault", p.id)
		}
		for _, c := range p.spec.Containers {
			if !pinnedRe.MatchString(c.Image) || strings.HasSuffix(c.Image, ":latest") {
				bad("%s: container %s: image %q is not pinned", p.id, c.Name, c.Image)
			}
			for _, rl := range []corev1.ResourceList{c.Resources.Requests, c.Resources.Limits} {
				if rl.Cpu().IsZero() || rl.Memory().IsZero() {
					bad("%s: container %s: resources requests and limits of cpu and memory must be set", p.id, c.Name)
					break
				}
			}
			cs := c.SecurityContext
			if cs == nil || cs.ReadOnlyRootFilesystem == nil || !*cs.ReadOnlyRootFilesystem || cs.Capabilities == nil || !slices.Equal(cs.Capabilities.Drop, []corev1.Capability{"ALL"}) {
				bad("%s: container %s: want a read-only root filesystem and capabilities drop ALL", p.id, c.Name)
			}
			for _, e := range c.Env {
				if strings.Contains(e.Name, "PASSWORD") && e.Value != "" {
					bad("%s: container %s: env %s has a literal value", p.id, c.Name, e.Name)
				}
			}
		}
	}
	for _, cm := range o.configMaps {
		for k, v := range cm.Data {
			for _, m := range literalPwd.FindAllStringSubmatch(v, -1) {
				if !regexp.MustCompile(`^\$\{\w+\}$`).MatchString(m[1]) {
					bad("ConfigMap %s: %s holds a literal password: write ${VAR} and put the value in the Secret", cm.Name, k)
				}
			}
		}
	}
	for _, s := range o.secrets {
		for k, v := range s.Data {
			if string(v) != "change-me" {
				bad("Secret %s: %s is not the example's placeholder: a real secret is in the tree", s.Name, k)
			}
		}
	}
	return errs
}

// TestOverlaysBuildStrict builds every overlay with kustomize's library, decodes every
// object strictly and checks the rules; where kubectl is installed, its kustomize
// must produce the same objects.
func TestOverlaysBuildStrict(t *testing.T) {
	names, nodes := table(t)
	kubectl, _ := exec.LookPath("kubectl")
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			m, err := build(t, memFS(t, name, nil), name)
			if err != nil {
				t.Fatalf("kustomize build overlays/%s: %v", name, err)
			}
			o, err := decode(m)
			if err != nil {
				t.Fatalf("overlays/%s: %v", name, err)
			}
			for _, err := range check(o, nodes[name]) {
				t.Errorf("overlays/%s: %v", name, err)
			}
			if kubectl == "" {
				return
			}
			// The same objects from kubectl kustomize (a copy with secrets.env from the example).
			dir := t.TempDir()
			if err := os.MkdirAll(filepath.Join(dir, "overlays"), 0o755); err != nil {
				t.Fatal(err)
			}
			for _, sub := range []string{"base", filepath.Join("overlays", name)} {
				if out, err := exec.Command("cp", "-r", filepath.Join("..", sub), filepath.Join(dir, sub)).CombinedOutput(); err != nil {
					t.Fatalf("cp: %v %s", err, out)
				}
			}
			ex := filepath.Join(dir, "overlays", name, "secrets.env.example")
			data, err := os.ReadFile(ex)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(strings.TrimSuffix(ex, ".example"), data, 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(kubectl, "kustomize", filepath.Join(dir, "overlays", name)).Output()
			if err != nil {
				t.Fatalf("kubectl kustomize: %v", err)
			}
			lib, err := m.AsYaml()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(normalize(t, out), normalize(t, lib)) {
				t.Errorf("overlays/%s: kubectl kustomize and sigs.k8s.io/kustomize/api v0.21.2 build different objects", name)
			}
		})
	}
}

// normalize is a YAML stream's documents as sorted JSON lines.
func normalize(t *testing.T, stream []byte) []byte {
	t.Helper()
	var docs []string
	for _, d := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(stream), -1) {
		if strings.TrimSpace(d) == "" {
			continue
		}
		j, err := yaml.YAMLToJSON([]byte(d))
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(j))
	}
	sort.Strings(docs)
	return []byte(strings.Join(docs, "\n"))
}

// TestRulesFail breaks each rule on purpose in a source file and expects the build, the
// strict decoding or check to name it.
func TestRulesFail(t *testing.T) {
	names, nodes := table(t)
	name := names[0]
	for _, tc := range []struct {
		rule, file, old, new, want string
		nodes                      []string
	}{
		{"misspelt field", "base/daemonset.yaml", "livenessProbe:", "livenesProbe:", "unknown field", nil},
		{"wrong type", "base/cron.yaml", "replicas: 1", "replicas: one", "replicas", nil},
		{"node not in the table", "", "", "", "affinity", []string{"reports99"}},
		{"image latest", "base/kustomization.yaml", "newTag: v0.1.0", "newTag: latest", "not pinned", nil},
		{"no limits", "base/cron.yaml", "            limits:\n              cpu: 500m\n              memory: 256Mi\n", "", "resources", nil},
		{"writable root", "base/api.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "read-only root", nil},
		{"seccomp", "base/daemonset.yaml", "type: RuntimeDefault", "type: Unconfined", "seccomp", nil},
		{"root", "base/cron.yaml", "runAsNonRoot: true\n        runAsUser", "runAsNonRoot: false\n        runAsUser", "runAsNonRoot", nil},
		{"literal password in config", "overlays/" + name + "/rpt.yaml", "${RPT_DB_PASSWORD}", "hunter2", "literal password", nil},
		{"literal password in env", "base/api.yaml", "            - name: HOME\n", "            - name: RPT_ROOT_PASSWORD\n              value: hunter2\n            - name: HOME\n", "literal value", nil},
		{"real secret", "overlays/" + name + "/secrets.env.example", "change-me", "s3cret", "placeholder", nil},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			hit := false
			mem := memFS(t, name, func(path string, data []byte) []byte {
				if path == filepath.FromSlash(tc.file) {
					if !bytes.Contains(data, []byte(tc.old)) {
						t.Fatalf("%s has no %q to break", tc.file, tc.old)
					}
					hit = true
					return bytes.Replace(data, []byte(tc.old), []byte(tc.new), 1)
				}
				return data
			})
			if tc.file != "" && !hit {
				t.Fatalf("no file %s", tc.file)
			}
			n := nodes[name]
			if tc.nodes != nil {
				n = tc.nodes
			}
			var msgs []string
			m, err := build(t, mem, name)
			if err == nil {
				var o *objects
				if o, err = decode(m); err == nil {
					for _, e := range check(o, n) {
						msgs = append(msgs, e.Error())
					}
				}
			}
			if err != nil {
				msgs = append(msgs, err.Error())
			}
			for _, msg := range msgs {
				if strings.Contains(msg, tc.want) {
					return
				}
			}
			t.Fatalf("broke %s: got %q, want one mentioning %q", tc.rule, msgs, tc.want)
		})
	}
}

// servicesFS is deploy/services/<name> in memory, secrets.env being its example.
func servicesFS(t *testing.T, name string, edit func(path string, data []byte) []byte) filesys.FileSystem {
	t.Helper()
	mem := filesys.MakeFsInMemory()
	dir := filepath.Join("..", "services", name)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := mem.MkdirAll("/services"); err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() || e.Name() == "secrets.env" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if edit != nil {
			data = edit(e.Name(), data)
		}
		dst := "/services/" + e.Name()
		if strings.HasSuffix(dst, ".example") {
			if err := mem.WriteFile(strings.TrimSuffix(dst, ".example"), data); err != nil {
				t.Fatal(err)
			}
		}
		if err := mem.WriteFile(dst, data); err != nil {
			t.Fatal(err)
		}
	}
	return mem
}

// TestServicesBuildStrict builds every deploy/services/<overlay> with the kustomize library
// and decodes every object strictly into its k8s.io/api type (the rules themselves are
// checkServices in deploy/services_test.go): one Deployment and one NodePort Service per
// service, every Deployment pinned to one node.
func TestServicesBuildStrict(t *testing.T) {
	names, _ := table(t)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(servicesFS(t, name, nil), "/services")
			if err != nil {
				t.Fatalf("kustomize build services/%s: %v", name, err)
			}
			o, err := decode(m)
			if err != nil {
				t.Fatalf("services/%s: %v", name, err)
			}
			if len(o.deployments) == 0 {
				t.Fatalf("services/%s: no Deployment", name)
			}
			for _, d := range o.deployments {
				a := d.Spec.Template.Spec.Affinity
				if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
					t.Errorf("services/%s: Deployment %s is not pinned to a node", name, d.Name)
					continue
				}
				terms := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
				if len(terms) != 1 || len(terms[0].MatchExpressions) != 1 || len(terms[0].MatchExpressions[0].Values) != 1 {
					t.Errorf("services/%s: Deployment %s: want one hostname", name, d.Name)
				}
			}
		})
	}
	// A misspelt field is an error, not a field kustomize drops.
	_, err := func() (*objects, error) {
		m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(servicesFS(t, names[0], func(p string, data []byte) []byte {
			if p == "services.yaml" {
				return bytes.Replace(data, []byte("  strategy: {type: Recreate}"), []byte("  stratgey: {type: Recreate}"), 1)
			}
			return data
		}), "/services")
		if err != nil {
			return nil, err
		}
		return decode(m)
	}()
	if err == nil || !strings.Contains(err.Error(), "stratgey") {
		t.Fatalf("a misspelt field: %v, want an error naming it", err)
	}
}
