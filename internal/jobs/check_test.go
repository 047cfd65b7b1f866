package jobs_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"rpt/internal/jobs"
	"rpt/reportdefs"
)

// Check refuses what Submit refuses and queues nothing (it has no store to queue in).
func TestCheckValidatesLikeSubmit(t *testing.T) {
	svc := newService(t, nil, time.UTC, fixed(time.Date(2027, 3, 14, 7, 0, 0, 0, time.UTC)))
	if err := svc.Check(jobs.SubmitRequest{Report: "rel", Params: map[string]string{"n": "2"}, OncePer: time.Hour}); err != nil {
		t.Fatalf("valid request: %v", err)
	}
	for _, tc := range []struct {
		r    jobs.SubmitRequest
		want string
	}{
		{jobs.SubmitRequest{Report: "nope"}, `unknown report "nope"`},
		{jobs.SubmitRequest{Report: "rel", Params: map[string]string{"n": "x"}}, `param "n" (int): invalid value "x"`},
		{jobs.SubmitRequest{Report: "rel", Params: map[string]string{"m": "1"}}, `param "m": not declared`},
		{jobs.SubmitRequest{Report: "rel", OncePer: time.Second}, "once-per 1s: must be at least 1m0s"},
	} {
		err := svc.Check(tc.r)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want %q", tc.r, err, tc.want)
		}
	}
	if err := svc.Check(jobs.SubmitRequest{Report: "nope"}); !errors.Is(err, reportdefs.ErrNotFound) {
		t.Errorf("unknown report is not ErrNotFound: %v", err)
	}
}
