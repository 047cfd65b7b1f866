package plexws

import (
	"context"
	"fmt"
	"time"
)

// The cheap call that answers "does this account work?": the work centers of the
// account's PCN, a few hundred rows at most.
const (
	CheckKey  = 4031
	CheckName = "Workcenter_Get"
)

// CheckResult is what one account's check found.
type CheckResult struct {
	PCN      int
	User     string
	Rows     int
	Tries    int
	Duration time.Duration
	Err      error // nil: the account works
}

// Check calls Workcenter_Get (4031) once with each account, one after another (the
// source's max_concurrent and min_interval apply), each within limit, and reports per
// account. It never returns a password: errors name the user and the PCN.
func (c *Client) Check(ctx context.Context, limit time.Duration) []CheckResult {
	var out []CheckResult
	for _, pcn := range c.PCNs() {
		acct := c.accounts[pcn]
		res := CheckResult{PCN: pcn, User: acct.user}
		start := time.Now()
		res.Rows, res.Tries, res.Err = c.check(ctx, acct, limit)
		res.Duration = time.Since(start)
		out = append(out, res)
	}
	return out
}

func (c *Client) check(ctx context.Context, acct account, limit time.Duration) (rows, tries int, err error) {
	cctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	what := fmt.Sprintf("source %q: %s (%d) for PCN %d", c.name, CheckName, CheckKey, acct.pcn)
	resp, err := c.call(cctx, acct, what, envelope(CheckKey, CheckName, nil))
	if err != nil {
		if ctx.Err() == nil && cctx.Err() != nil {
			return 0, 0, fmt.Errorf("%s: no answer within %s", what, limit)
		}
		return 0, 0, err
	}
	defer func() { _ = resp.body.Close(); resp.end() }()
	dec := newDecoder(resp.body)
	for {
		ok, err := dec.next()
		if err != nil {
			if ctx.Err() == nil && cctx.Err() != nil {
				return rows, resp.tries, fmt.Errorf("%s: no complete answer within %s", what, limit)
			}
			return rows, resp.tries, fmt.Errorf("%s: %w", what, err)
		}
		if !ok {
			return rows, resp.tries, nil
		}
		rows++
	}
}
