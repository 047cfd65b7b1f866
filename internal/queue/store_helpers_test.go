package queue

import (
	"reflect"
	"testing"
)

func TestClaimScopes(t *testing.T) {
	t.Parallel()
	got := ClaimScopes([]Scope{{Name: "source:plex", Limit: 2}, {Name: "report:tb", Limit: 1}, {Name: "group:acct", Limit: 0}, {Name: "report:tb", Limit: 3}})
	want := []Scope{{Name: "report:tb", Limit: 1}, {Name: "source:plex", Limit: 2}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ClaimScopes = %v, want %v (sorted, unlimited dropped, each once with its smallest limit)", got, want)
	}
	q, args := InList([]int64{4, 5, 6})
	if q != "(?, ?, ?)" || !reflect.DeepEqual(args, []any{int64(4), int64(5), int64(6)}) {
		t.Errorf("InList = %q %v", q, args)
	}
}
