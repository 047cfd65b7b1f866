package sqlite_test

import (
	"encoding/json"
	"testing"

	"rpt/internal/queue"
)

// queue.ParamsMatch is the JobList params filter of both stores; it is tested here
// because this package owns it with the store.
func TestParamsMatch(t *testing.T) {
	t.Parallel()
	params := json.RawMessage(`{"pcn": 123681, "start_period": 202601, "amount": "12.50", "flag": true,
		"ids": [1, 2], "opt": null, "big": 9007199254740993}`)
	tests := []struct {
		name string
		want map[string]any
		ok   bool
	}{
		{"no filter", nil, true},
		{"int", map[string]any{"pcn": 123681}, true},
		{"int64", map[string]any{"pcn": int64(123681)}, true},
		{"float of an int", map[string]any{"pcn": 123681.0}, true},
		{"string of a number (typed on a command line)", map[string]any{"pcn": "123681"}, true},
		{"two values", map[string]any{"pcn": 123681, "start_period": 202601}, true},
		{"decimal string", map[string]any{"amount": "12.50"}, true},
		{"decimal string differs", map[string]any{"amount": "12.5"}, false},
		{"bool", map[string]any{"flag": true}, true},
		{"bool as string", map[string]any{"flag": "true"}, true},
		{"list", map[string]any{"ids": []any{1, 2}}, true},
		{"list order matters", map[string]any{"ids": []int{2, 1}}, false},
		{"null", map[string]any{"opt": nil}, true},
		{"big int exact", map[string]any{"big": int64(9007199254740993)}, true},
		{"big int off by one", map[string]any{"big": int64(9007199254740992)}, false},
		{"wrong value", map[string]any{"pcn": 1}, false},
		{"missing param", map[string]any{"nope": 1}, false},
	}
	for _, tc := range tests {
		if got := queue.ParamsMatch(params, tc.want); got != tc.ok {
			t.Errorf("%s: ParamsMatch(%v) = %v, want %v", tc.name, tc.want, got, tc.ok)
		}
	}
	if queue.ParamsMatch(json.RawMessage(`not json`), map[string]any{"a": 1}) {
		t.Errorf("malformed params matched")
	}
}
