package api_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"rpt/internal/api"
	"rpt/internal/queue"
)

// The OpenAPI document describes exactly the registered routes, each with the role the
// route enforces, every path parameter declared, and every $ref resolving; the served
// document is the embedded one.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(api.OpenAPI(), &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi version %q", doc.OpenAPI)
	}
	s := &api.Server{Legacy: true, Schedules: crontabSchedules{}}
	registered := map[string]string{}
	for _, rt := range s.Routes() {
		role := rt.Role
		if role == "" {
			role = "none"
		}
		registered[rt.Pattern] = role
	}
	documented := map[string]string{}
	pathParam := regexp.MustCompile(`\{([a-z]+)\}`)
	for path, ops := range doc.Paths {
		for method, raw := range ops {
			var op struct {
				Role       string `json:"x-rpt-role"`
				Parameters []struct {
					Name string `json:"name"`
					In   string `json:"in"`
					Ref  string `json:"$ref"`
				} `json:"parameters"`
				Responses map[string]json.RawMessage `json:"responses"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			pattern := strings.ToUpper(method) + " " + path
			documented[pattern] = op.Role
			if len(op.Responses) == 0 {
				t.Errorf("%s: no responses", pattern)
			}
			for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
				found := slices.ContainsFunc(op.Parameters, func(p struct {
					Name string `json:"name"`
					In   string `json:"in"`
					Ref  string `json:"$ref"`
				}) bool {
					return p.In == "path" && p.Name == m[1] || p.Ref != "" && strings.EqualFold(strings.TrimPrefix(p.Ref, "#/components/parameters/"), map[string]string{"id": "JobID", "kind": "PauseKind"}[m[1]])
				})
				if !found {
					t.Errorf("%s: path parameter %s not declared", pattern, m[1])
				}
			}
		}
	}
	for p, role := range registered {
		got, ok := documented[p]
		switch {
		case !ok:
			t.Errorf("route %s is not in openapi.json", p)
		case got != role:
			t.Errorf("%s: x-rpt-role %q, the route needs %q", p, got, role)
		}
	}
	for p := range documented {
		if _, ok := registered[p]; !ok {
			t.Errorf("openapi.json documents %s, which no route serves", p)
		}
	}
	// Every $ref names a component that exists.
	var all map[string]any
	_ = json.Unmarshal(api.OpenAPI(), &all)
	comps := all["components"].(map[string]any)
	for _, ref := range regexp.MustCompile(`"\$ref":\s*"#/components/([a-zA-Z]+)/([A-Za-z]+)"`).FindAllStringSubmatch(string(api.OpenAPI()), -1) {
		group, _ := comps[ref[1]].(map[string]any)
		if _, ok := group[ref[2]]; !ok {
			t.Errorf("$ref to a missing component %s/%s", ref[1], ref[2])
		}
	}
	if len(registered) < 15 {
		t.Errorf("only %d routes: Routes() lost some", len(registered))
	}
}

// The document is served to callers with a token, and is the embedded one.
func TestOpenAPIServed(t *testing.T) {
	f := newFixture(t, openSQLite(t))
	r := f.do("GET", "/api/v1/openapi.json", f.tokens[queue.RoleViewer], "")
	if r.status != http.StatusOK || string(r.body) != string(api.OpenAPI()) {
		t.Errorf("openapi.json: %d, %d bytes", r.status, len(r.body))
	}
	if r := f.do("GET", "/api/v1/openapi.json", "", ""); r.status != 401 {
		t.Errorf("openapi.json without a token: %d", r.status)
	}
}
