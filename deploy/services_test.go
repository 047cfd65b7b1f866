package deploy_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The images of the per-node services, pinned by version (a new version is an edit here
// and go test ./deploy -run TestServicesMatchTable -update).
const (
	mariadbImage   = "mariadb:11.4.4"
	mosquittoImage = "eclipse-mosquitto:2.0.20"
	mongoImage     = "mongo:7.0.14"
)

// servicesRoot holds one optional folder per overlay: the MySQL, Mosquitto and MongoDB of
// each of its nodes, pinned to the node, as in the original clusters.
const servicesRoot = "services"

const servicesNote = "# Generated from deploy/nodes.tsv by `go test ./deploy -run TestServicesMatchTable -update`:\n# edit the table, not this file.\n"

// svc is one per-node service of the generator: its kind, image, uid, port in the pod,
// the table's NodePort and where its data lives on the node.
type svc struct {
	kind, image string
	uid         int
	port        int
	nodePort    int
	dataPath    string // in the container
}

func nodeServices(n node) []svc {
	s := []svc{
		{"mysql", mariadbImage, 999, 3306, n.mysql, "/var/lib/mysql"},
		{"mosquitto", mosquittoImage, 1883, 1883, n.mosquitto, "/mosquitto/data"},
	}
	if n.mongodb != 0 {
		s = append(s, svc{"mongodb", mongoImage, 999, 27017, n.mongodb, "/data/db"})
	}
	return s
}

// servicesFiles are the files of services/<overlay>/.
func servicesFiles(nodes []node) map[string]string {
	files := map[string]string{}
	files["kustomization.yaml"] = servicesNote + fmt.Sprintf(`# MySQL, Mosquitto and (where the table lists one) MongoDB on each of %s, each pinned to
# its node with its data in /var/lib/rpt/<service> on that node. Optional: apply it only to a
# cluster that does not already run them (README, "Deploying").
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: rpt
resources:
  - services.yaml
configMapGenerator:
  - name: rpt-mosquitto
    files:
      - mosquitto.conf
# secrets.env is not in git: copy secrets.env.example and fill it in.
secretGenerator:
  - name: rpt-services-secrets
    envs:
      - secrets.env
`, nodeNames(nodes, ", "))
	files["mosquitto.conf"] = servicesNote + `# The broker the agents use (tcp://<node>:<NodePort>, no credentials, as the overlays' rpt.yaml).
listener 1883
allow_anonymous true
persistence true
persistence_location /mosquitto/data/
`
	files["secrets.env.example"] = `# Copy to secrets.env (git-ignored) and set the real values; kustomize makes them the
# rpt-services-secrets Secret, which MySQL and MongoDB read by reference.
# RPT_DB_PASSWORD must equal the overlay's (the agents' queue user rpt).
MYSQL_ROOT_PASSWORD=change-me
RPT_DB_PASSWORD=change-me
MONGO_ROOT_PASSWORD=change-me
`
	var b strings.Builder
	b.WriteString(servicesNote)
	for _, n := range nodes {
		for _, s := range nodeServices(n) {
			name := s.kind + "-" + n.name
			var env, extraVol, extraMount string
			switch s.kind {
			case "mysql":
				env = `          env:
            - name: MARIADB_ROOT_PASSWORD
              valueFrom: {secretKeyRef: {name: rpt-services-secrets, key: MYSQL_ROOT_PASSWORD}}
            - name: MARIADB_DATABASE
              value: rpt
            - name: MARIADB_USER
              value: rpt
            - name: MARIADB_PASSWORD
              valueFrom: {secretKeyRef: {name: rpt-services-secrets, key: RPT_DB_PASSWORD}}
`
			case "mongodb":
				env = `          env:
            - name: MONGO_INITDB_ROOT_USERNAME
              value: rpt
            - name: MONGO_INITDB_ROOT_PASSWORD
              valueFrom: {secretKeyRef: {name: rpt-services-secrets, key: MONGO_ROOT_PASSWORD}}
`
			case "mosquitto":
				extraMount = `            - name: config
              mountPath: /mosquitto/config
              readOnly: true
`
				extraVol = `        - name: config
          configMap:
            name: rpt-mosquitto
`
			}
			fmt.Fprintf(&b, `---
# %[2]s on %[1]s: data in /var/lib/rpt/%[2]s on the node (create it owned by uid %[5]d).
apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[3]s
  labels: {app.kubernetes.io/name: %[2]s, app.kubernetes.io/instance: %[3]s}
spec:
  replicas: 1
  # Never two pods on one data directory.
  strategy: {type: Recreate}
  selector:
    matchLabels: {app.kubernetes.io/instance: %[3]s}
  template:
    metadata:
      labels: {app.kubernetes.io/name: %[2]s, app.kubernetes.io/instance: %[3]s}
    spec:
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms:
              - matchExpressions:
                  - key: kubernetes.io/hostname
                    operator: In
                    values: [%[1]s]
      securityContext:
        runAsNonRoot: true
        runAsUser: %[5]d
        runAsGroup: %[5]d
        seccompProfile: {type: RuntimeDefault}
      containers:
        - name: %[2]s
          image: %[4]s
%[8]s          ports:
            - containerPort: %[6]d
          # The port answers: a first start (database initialisation) gets 5 minutes.
          startupProbe:
            tcpSocket: {port: %[6]d}
            periodSeconds: 10
            failureThreshold: 30
          readinessProbe:
            tcpSocket: {port: %[6]d}
            periodSeconds: 10
          livenessProbe:
            tcpSocket: {port: %[6]d}
            periodSeconds: 20
            failureThreshold: 6
          securityContext:
            allowPrivilegeEscalation: false
            capabilities: {drop: [ALL]}
          resources:
            requests: {cpu: 100m, memory: 256Mi}
            limits: {cpu: "1", memory: 1Gi}
          volumeMounts:
            - name: data
              mountPath: %[9]s
%[10]s      volumes:
        - name: data
          hostPath:
            path: /var/lib/rpt/%[2]s
            type: DirectoryOrCreate
%[11]s---
apiVersion: v1
kind: Service
metadata:
  name: %[3]s
spec:
  type: NodePort
  selector: {app.kubernetes.io/instance: %[3]s}
  ports:
    - port: %[6]d
      targetPort: %[6]d
      nodePort: %[7]d
`, n.name, s.kind, name, s.image, s.uid, s.port, s.nodePort, env, s.dataPath, extraMount, extraVol)
		}
	}
	files["services.yaml"] = b.String()
	return files
}

// TestServicesMatchTable: deploy/services is exactly what nodes.tsv generates; -update rewrites it.
func TestServicesMatchTable(t *testing.T) {
	names, m := byOverlay(readTable(t))
	if *update {
		for _, name := range names {
			dir := filepath.Join(servicesRoot, name)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for f, content := range servicesFiles(m[name]) {
				if err := os.WriteFile(filepath.Join(dir, f), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	var errs []error
	ents, err := os.ReadDir(servicesRoot)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !slices.Contains(names, e.Name()) {
			errs = append(errs, fmt.Errorf("%s/%s: no node of nodes.tsv has overlay %q", servicesRoot, e.Name(), e.Name()))
		}
	}
	for _, name := range names {
		for f, want := range servicesFiles(m[name]) {
			p := filepath.Join(servicesRoot, name, f)
			if got, err := os.ReadFile(p); err != nil || string(got) != want {
				errs = append(errs, fmt.Errorf("%s differs from what nodes.tsv generates (run go test ./deploy -run TestServicesMatchTable -update)", p))
			}
		}
		if out, err := exec.Command("git", "check-ignore", "-q", filepath.Join(servicesRoot, name, "secrets.env")).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("%s/%s/secrets.env is not git-ignored: %v %s", servicesRoot, name, err, out))
		}
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

func renderServices(t *testing.T, kubectl, name string) []map[string]any {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, name)
	copyDir(t, filepath.Join(servicesRoot, name), dir)
	data, err := os.ReadFile(filepath.Join(dir, "secrets.env.example"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "secrets.env"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(kubectl, "kustomize", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize services/%s: %v\n%s", name, err, out)
	}
	var objs []map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(out))
	for {
		var o map[string]any
		if err := dec.Decode(&o); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("services/%s: %v", name, err)
		}
		if o != nil {
			objs = append(objs, o)
		}
	}
	return objs
}

// checkServices returns every rule a rendered services folder breaks: each node of the
// table has its MySQL, Mosquitto and (where listed) MongoDB, on that node only, on the
// table's NodePort, with a pinned image, resources, non-root, and passwords only by reference.
func checkServices(objs []map[string]any, nodes []node) []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	byName := map[string]map[string]any{}
	for _, o := range objs {
		byName[str(o["kind"])+"/"+str(get(o, "metadata.name"))] = o
	}
	want := map[string]bool{}
	for _, n := range nodes {
		for _, s := range nodeServices(n) {
			name := s.kind + "-" + n.name
			want["Deployment/"+name], want["Service/"+name] = true, true
			d, sv := byName["Deployment/"+name], byName["Service/"+name]
			if d == nil || sv == nil {
				bad("%s: no Deployment and Service for %s on %s", name, s.kind, n.name)
				continue
			}
			if np := str(get(sv, "spec.ports.0.nodePort")); np != fmt.Sprint(s.nodePort) || str(get(sv, "spec.type")) != "NodePort" {
				bad("Service %s: nodePort %s, want the table's %s port %d", name, np, s.kind, s.nodePort)
			}
			if tp := str(get(sv, "spec.ports.0.targetPort")); tp != fmt.Sprint(s.port) {
				bad("Service %s: targetPort %s, want %d", name, tp, s.port)
			}
			terms := get(d, "spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms")
			vals, _ := get(terms, "0.matchExpressions.0.values").([]any)
			if l, _ := terms.([]any); len(l) != 1 || str(get(terms, "0.matchExpressions.0.key")) != "kubernetes.io/hostname" ||
				str(get(terms, "0.matchExpressions.0.operator")) != "In" || len(vals) != 1 || str(vals[0]) != n.name {
				bad("Deployment %s: node affinity must be kubernetes.io/hostname In [%s] only", name, n.name)
			}
			if str(get(d, "spec.replicas")) != "1" || str(get(d, "spec.strategy.type")) != "Recreate" {
				bad("Deployment %s: want 1 replica and the Recreate strategy (one pod per data directory)", name)
			}
			if str(get(d, "spec.template.spec.securityContext.runAsNonRoot")) != "true" {
				bad("Deployment %s: runAsNonRoot not true", name)
			}
			c, _ := get(d, "spec.template.spec.containers.0").(map[string]any)
			if img := str(c["image"]); !tagRe.MatchString(img) || strings.HasSuffix(img, ":latest") || img != s.image {
				bad("Deployment %s: image %q, want the pinned %s", name, img, s.image)
			}
			for _, k := range []string{"requests.cpu", "requests.memory", "limits.cpu", "limits.memory"} {
				if get(c, "resources."+k) == nil {
					bad("Deployment %s: resources.%s not set", name, k)
				}
			}
			env, _ := c["env"].([]any)
			for _, e := range env {
				em, _ := e.(map[string]any)
				if strings.Contains(strings.ToUpper(str(em["name"])), "PASSWORD") && (em["value"] != nil || get(em, "valueFrom.secretKeyRef.name") == nil) {
					bad("Deployment %s: env %s has a literal value: passwords only by secretKeyRef", name, em["name"])
				}
			}
			for _, pr := range []string{"startupProbe", "readinessProbe", "livenessProbe"} {
				if p := str(get(c, pr+".tcpSocket.port")); p != fmt.Sprint(s.port) {
					bad("Deployment %s: %s on port %q, want a tcpSocket probe on %d", name, pr, p, s.port)
				}
			}
			hp := str(get(d, "spec.template.spec.volumes.0.hostPath.path"))
			if hp != "/var/lib/rpt/"+s.kind {
				bad("Deployment %s: data on hostPath %q, want /var/lib/rpt/%s", name, hp, s.kind)
			}
		}
	}
	for k, o := range byName {
		if (o["kind"] == "Deployment" || o["kind"] == "Service") && !want[k] {
			bad("%s: not a service of any node of this cluster in the table", k)
		}
		if o["kind"] == "Secret" {
			for key, v := range o["data"].(map[string]any) {
				if dec, _ := base64.StdEncoding.DecodeString(str(v)); string(dec) != "change-me" {
					bad("Secret %s: %s is not the example's value: a literal secret in the rendered manifests", k, key)
				}
			}
		}
	}
	return errs
}

func TestServicesRender(t *testing.T) {
	kubectl := kubectlOrSkip(t)
	names, m := byOverlay(readTable(t))
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			objs := renderServices(t, kubectl, name)
			for _, err := range checkServices(objs, m[name]) {
				t.Error(err)
			}
		})
	}
}

// TestServicesRulesFail breaks each rule on purpose in the rendered 3x services (the
// cluster with the corrected reports33 MongoDB port) and expects checkServices to name it.
func TestServicesRulesFail(t *testing.T) {
	kubectl := kubectlOrSkip(t)
	_, m := byOverlay(readTable(t))
	pristine := renderServices(t, kubectl, "3x")
	if errs := checkServices(pristine, m["3x"]); len(errs) != 0 {
		t.Fatalf("the unbroken services fail: %v", errs)
	}
	obj := func(objs []map[string]any, kind, name string) map[string]any {
		for _, o := range objs {
			if o["kind"] == kind && get(o, "metadata.name") == name {
				return o
			}
		}
		t.Fatalf("no %s %s", kind, name)
		return nil
	}
	for _, tc := range []struct {
		rule, want string
		break_     func(objs []map[string]any)
	}{
		{"port (the original typo)", "nodePort 30332", func(objs []map[string]any) {
			set(obj(objs, "Service", "mongodb-reports33"), "spec.ports.0.nodePort", 30332)
		}},
		{"missing mongodb", "no Deployment and Service for mongodb on reports32", func(objs []map[string]any) {
			obj(objs, "Service", "mongodb-reports32")["kind"] = "Gone"
		}},
		{"affinity", "node affinity", func(objs []map[string]any) {
			set(obj(objs, "Deployment", "mysql-reports31"), "spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms.0.matchExpressions.0.values", []any{"reports32"})
		}},
		{"image latest", "image", func(objs []map[string]any) {
			set(obj(objs, "Deployment", "mosquitto-reports32"), "spec.template.spec.containers.0.image", "eclipse-mosquitto:latest")
		}},
		{"image untagged", "image", func(objs []map[string]any) {
			set(obj(objs, "Deployment", "mongodb-reports31"), "spec.template.spec.containers.0.image", "mongo")
		}},
		{"literal password in env", "literal value", func(objs []map[string]any) {
			c := get(obj(objs, "Deployment", "mysql-reports33"), "spec.template.spec.containers.0").(map[string]any)
			c["env"] = append(c["env"].([]any), map[string]any{"name": "MARIADB_ROOT_PASSWORD", "value": "hunter2"})
		}},
		{"literal secret", "literal secret", func(objs []map[string]any) {
			find(objs, "Secret")["data"].(map[string]any)["MYSQL_ROOT_PASSWORD"] = base64.StdEncoding.EncodeToString([]byte("hunter2"))
		}},
		{"resources", "resources.limits.memory", func(objs []map[string]any) {
			delete(get(obj(objs, "Deployment", "mongodb-reports33"), "spec.template.spec.containers.0.resources.limits").(map[string]any), "memory")
		}},
		{"root", "runAsNonRoot", func(objs []map[string]any) {
			set(obj(objs, "Deployment", "mysql-reports32"), "spec.template.spec.securityContext.runAsNonRoot", false)
		}},
		{"two replicas", "Recreate", func(objs []map[string]any) {
			set(obj(objs, "Deployment", "mysql-reports32"), "spec.replicas", 2)
		}},
		{"probe port", "readinessProbe", func(objs []map[string]any) {
			set(obj(objs, "Deployment", "mongodb-reports32"), "spec.template.spec.containers.0.readinessProbe.tcpSocket.port", 3306)
		}},
		{"no liveness", "livenessProbe", func(objs []map[string]any) {
			delete(get(obj(objs, "Deployment", "mosquitto-reports33"), "spec.template.spec.containers.0").(map[string]any), "livenessProbe")
		}},
		{"data path", "hostPath", func(objs []map[string]any) {
			set(obj(objs, "Deployment", "mosquitto-reports31"), "spec.template.spec.volumes.0.hostPath.path", "/tmp")
		}},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			objs := deepCopy(pristine)
			tc.break_(objs)
			errs := checkServices(objs, m["3x"])
			for _, err := range errs {
				if strings.Contains(err.Error(), tc.want) {
					return
				}
			}
			t.Fatalf("broke %s: errors %v, want one mentioning %q", tc.rule, errs, tc.want)
		})
	}
}
