package queuetest

import (
	"bytes"
	"errors"
	"testing"

	"rpt/internal/queue"
)

// definitionsTests are the subtests of queue.Definitions (rpt_definitions, migration
// 00004); Run runs them with the rest.
var definitionsTests = []struct {
	name string
	run  func(t *testing.T, s queue.Store)
}{
	{"DefinitionPublishGet", testDefinitionPublishGet},
	{"DefinitionPublishInvalid", testDefinitionPublishInvalid},
}

func testDefinitionPublishGet(t *testing.T, s queue.Store) {
	ctx := t.Context()
	v1 := []byte("name: tb\nsource: warehouse\nsql: SELECT 1 AS one\n")
	v2 := []byte("name: tb\nsource: warehouse\nsql: SELECT 2 AS two\n")
	sum1 := queue.DefinitionSHA256(v1)

	if _, err := s.DefinitionGet(ctx, sum1); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("get before publish: err = %v, want ErrNotFound", err)
	}
	d, existing, err := s.DefinitionPublish(ctx, queue.DefinitionPublishParams{Report: "tb", Definition: v1, PublishedBy: "admin"})
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	if existing || d.SHA256 != sum1 || d.Report != "tb" || !bytes.Equal(d.Definition, v1) || d.PublishedBy != "admin" || d.PublishedAt.IsZero() {
		t.Fatalf("publish = %+v existing %v, want a new row for sha %s by admin", d, existing, sum1)
	}
	// The same bytes again: the first row stays (who and when).
	again, existing, err := s.DefinitionPublish(ctx, queue.DefinitionPublishParams{Report: "tb", Definition: v1, PublishedBy: "someone-else"})
	if err != nil {
		t.Fatalf("publish again: %v", err)
	}
	if !existing || again.PublishedBy != "admin" || !again.PublishedAt.Equal(d.PublishedAt) {
		t.Errorf("publish again = %+v existing %v, want the first row (admin) with existing true", again, existing)
	}
	if _, _, err := s.DefinitionPublish(ctx, queue.DefinitionPublishParams{Report: "tb", Definition: v2, PublishedBy: "admin"}); err != nil {
		t.Fatalf("publish v2: %v", err)
	}
	got, err := s.DefinitionGet(ctx, sum1)
	if err != nil || !bytes.Equal(got.Definition, v1) || got.Report != "tb" {
		t.Errorf("get v1 = %+v, %v; want v1's bytes", got, err)
	}
	// A hash differing in one byte is not found.
	other := []byte(sum1)
	other[0] ^= 1
	if _, err := s.DefinitionGet(ctx, string(other)); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("get of another hash: err = %v, want ErrNotFound", err)
	}
	list, err := s.DefinitionList(ctx)
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if len(list) != 2 {
		t.Fatalf("list has %d rows, want 2", len(list))
	}
	seen := map[string]bool{}
	for _, d := range list {
		seen[d.SHA256] = true
	}
	if !seen[sum1] || !seen[queue.DefinitionSHA256(v2)] {
		t.Errorf("list = %v, want both versions", seen)
	}
}

func testDefinitionPublishInvalid(t *testing.T, s queue.Store) {
	for _, p := range []queue.DefinitionPublishParams{
		{Report: "", Definition: []byte("x")},
		{Report: "tb", Definition: nil},
	} {
		if _, _, err := s.DefinitionPublish(t.Context(), p); !errors.Is(err, queue.ErrInvalid) {
			t.Errorf("publish %+v: err = %v, want ErrInvalid", p, err)
		}
	}
	if list, err := s.DefinitionList(t.Context()); err != nil || len(list) != 0 {
		t.Errorf("after invalid publishes: list = %v, %v; want empty", list, err)
	}
}
