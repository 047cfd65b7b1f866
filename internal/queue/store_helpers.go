package queue

import (
	"bytes"
	"encoding/json"
	"sort"
	"strings"
)

// ParamsMatch reports whether resolved job params (a JSON object) hold every value in
// want. Values compare as JSON, so an int 5 matches a float64 5 and lists compare
// element by element; a string in want also matches a scalar param whose JSON text is
// that string (so `-p pcn=123681` typed on a command line matches the int 123681). Both
// stores filter JobList with it, so `rpt get --latest -p` means the same everywhere.
func ParamsMatch(params json.RawMessage, want map[string]any) bool {
	if len(want) == 0 {
		return true
	}
	var have map[string]json.RawMessage
	if err := json.Unmarshal(params, &have); err != nil {
		return false
	}
	for name, w := range want {
		h, ok := have[name]
		if !ok || !jsonValueMatch(h, w) {
			return false
		}
	}
	return true
}

func jsonValueMatch(have json.RawMessage, want any) bool {
	wantJSON, err := json.Marshal(want)
	if err != nil {
		return false
	}
	if canonicalJSON(have) == canonicalJSON(wantJSON) {
		return true
	}
	if s, ok := want.(string); ok {
		h := bytes.TrimSpace(have)
		if len(h) > 0 && h[0] != '[' && h[0] != '{' && h[0] != '"' {
			return strings.TrimSpace(s) == string(h)
		}
	}
	return false
}

// canonicalJSON re-encodes a JSON value so equal values have equal text (numbers as
// json.Number keep their digits; object keys sorted by encoding/json).
func canonicalJSON(b []byte) string {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return "\x00invalid:" + string(b)
	}
	v = normalizeNumbers(v)
	out, err := json.Marshal(v)
	if err != nil {
		return "\x00invalid:" + string(b)
	}
	return string(out)
}

// normalizeNumbers turns json.Numbers that are integers written as 5.0 or 5e0 into
// their plain form so 5 and 5.0 compare equal, without going through float64 (which
// would lose digits of large ints and decimals).
func normalizeNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return json.Number(jsonInt(i))
		}
		if f, err := x.Float64(); err == nil && f == float64(int64(f)) && f < 1e15 && f > -1e15 {
			return json.Number(jsonInt(int64(f)))
		}
		return x
	case []any:
		for i := range x {
			x[i] = normalizeNumbers(x[i])
		}
		return x
	case map[string]any:
		for k := range x {
			x[k] = normalizeNumbers(x[k])
		}
		return x
	}
	return v
}

func jsonInt(i int64) string {
	b, _ := json.Marshal(i)
	return string(b)
}

// ClaimScopes returns the limited scopes of a job sorted by name, each once with its
// smallest limit: the order both stores take slots in, the same in every claimer, so
// two claim transactions never lock slot rows in opposite orders.
func ClaimScopes(scopes []Scope) []Scope {
	out := make([]Scope, 0, len(scopes))
	for _, sc := range scopes {
		if sc.Limit > 0 {
			out = append(out, sc)
		}
	}
	sort.Slice(out, func(a, b int) bool {
		if out[a].Name != out[b].Name {
			return out[a].Name < out[b].Name
		}
		return out[a].Limit < out[b].Limit
	})
	dedup := out[:0]
	for _, sc := range out {
		if len(dedup) > 0 && dedup[len(dedup)-1].Name == sc.Name {
			continue
		}
		dedup = append(dedup, sc)
	}
	return dedup
}

// InList is "(?, ?, ...)" for vals, with the vals as arguments, for both SQL stores.
func InList[T any](vals []T) (string, []any) {
	args := make([]any, len(vals))
	for i, v := range vals {
		args[i] = v
	}
	return "(?" + strings.Repeat(", ?", len(vals)-1) + ")", args
}
