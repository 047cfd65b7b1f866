package plexws

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"rpt/internal/source"
)

// maxCalls bounds the calls one request fans out to (PCNs x periods).
const maxCalls = 1000

// plannedCall is one ExecuteDataSource call of a request: its account, the PCN and
// period it stands for (0: none) and its inputs as written.
type plannedCall struct {
	acct   account
	pcn    int64
	period int64
	inputs []input
}

// CallDataSource runs ds: one call per PCN (ds.PCN) and per period (ds.Periods), in
// that order, each with its PCN's account; the rows are streamed and concatenated,
// prefixed with pcn and period columns when the request fans out by them. With ds.SQL
// the rows are loaded into SQLite and the statement's result is returned instead
// (shape.go). Errors up to the first row (a refused password, a SOAP fault, a changed
// column) are returned here; later ones end the rows (Err).
func (c *Client) CallDataSource(ctx context.Context, ds source.DataSource, params map[string]any) (source.Rows, error) {
	calls, err := c.plan(ds, params)
	if err != nil {
		return nil, fmt.Errorf("source %q: data source %d: %w: %w", c.name, ds.Key, source.ErrRequest, err)
	}
	if len(ds.Columns) == 0 {
		return nil, fmt.Errorf("source %q: data source %d: %w: no columns: (a plexws data source declares the columns it returns, in order)", c.name, ds.Key, source.ErrRequest)
	}
	if ds.Types != nil && len(ds.Types) != len(ds.Columns) {
		return nil, fmt.Errorf("source %q: data source %d: %w: %d column types for %d columns", c.name, ds.Key, source.ErrRequest, len(ds.Types), len(ds.Columns))
	}
	r := &dsRows{c: c, ctx: ctx, ds: ds, calls: calls, readAt: c.now()}
	// The fan-out adds the PCN and the period of each call as leading columns, unless
	// the data source returns a column of that name itself (the shift report has PCN).
	r.addPCN = ds.PCN != "" && !declares(ds.Columns, "pcn")
	r.addPeriod = ds.Periods[0] != "" && !declares(ds.Columns, "period")
	if r.addPCN {
		r.cols = append(r.cols, source.Column{Name: "pcn", Type: source.TypeInt})
	}
	if r.addPeriod {
		r.cols = append(r.cols, source.Column{Name: "period", Type: source.TypeInt})
	}
	r.extra = len(r.cols)
	for i, name := range ds.Columns {
		t := source.TypeString
		if ds.Types != nil {
			t = ds.Types[i]
		}
		r.cols = append(r.cols, source.Column{Name: name, Type: t})
	}
	r.vals = make([]any, len(r.cols))
	// Read up to the first row, so that what fails before any row fails the call.
	if r.advance() {
		r.pending = true
	} else if r.err != nil {
		err := r.err
		_ = r.Close()
		return nil, err
	}
	if ds.SQL != "" {
		return c.shape(ctx, ds, params, r)
	}
	return r, nil
}

// plan lists the calls of a request and the inputs of each.
func (c *Client) plan(ds source.DataSource, params map[string]any) ([]plannedCall, error) {
	var pcns []int64
	if ds.PCN != "" {
		v, ok := params[ds.PCN]
		if !ok {
			return nil, fmt.Errorf("datasource pcn: parameter %q has no value", ds.PCN)
		}
		switch x := v.(type) {
		case int64:
			pcns = []int64{x}
		case []any:
			for _, e := range x {
				n, ok := e.(int64)
				if !ok {
					return nil, fmt.Errorf("datasource pcn: parameter %q: want PCN numbers, got %T", ds.PCN, e)
				}
				if !slices.Contains(pcns, n) {
					pcns = append(pcns, n)
				}
			}
		default:
			return nil, fmt.Errorf("datasource pcn: parameter %q: want a PCN number or a list of them, got %T", ds.PCN, v)
		}
		if len(pcns) == 0 {
			return nil, fmt.Errorf("datasource pcn: parameter %q is an empty list", ds.PCN)
		}
	} else {
		if len(c.accounts) != 1 {
			return nil, fmt.Errorf("source %q has %d accounts; the definition must say which parameter holds the PCN (datasource: pcn:)", c.name, len(c.accounts))
		}
		pcns = []int64{int64(c.PCNs()[0])}
	}
	accts := make([]account, len(pcns))
	for i, p := range pcns {
		a, ok := c.accounts[int(p)]
		if !ok {
			return nil, fmt.Errorf("source %q has no account for PCN %d (accounts: %s)", c.name, p, joinInts(c.PCNs()))
		}
		accts[i] = a
	}
	periods := []int64{0}
	if ds.Periods[0] != "" {
		first, ok1 := params[ds.Periods[0]].(int64)
		last, ok2 := params[ds.Periods[1]].(int64)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("datasource periods: parameters %q and %q must be periods (YYYYMM)", ds.Periods[0], ds.Periods[1])
		}
		var err error
		if periods, err = periodRange(first, last); err != nil {
			return nil, err
		}
	}
	if n := len(pcns) * len(periods); n > maxCalls {
		return nil, fmt.Errorf("%d PCNs x %d periods is %d calls (at most %d)", len(pcns), len(periods), n, maxCalls)
	}
	names := make([]string, 0, len(ds.Inputs))
	for in := range ds.Inputs {
		names = append(names, in)
	}
	slices.Sort(names)
	var calls []plannedCall
	for i, pcn := range pcns {
		for _, period := range periods {
			pc := plannedCall{acct: accts[i], pcn: pcn, period: period}
			if ds.PCN == "" {
				pc.pcn = 0
			}
			for _, in := range names {
				param := ds.Inputs[in]
				var v any
				switch {
				case param == ds.PCN:
					v = pcn
				case ds.Periods[0] != "" && (param == ds.Periods[0] || param == ds.Periods[1]):
					v = period
				default:
					var ok bool
					if v, ok = params[param]; !ok {
						return nil, fmt.Errorf("datasource inputs.%s: parameter %q has no value", in, param)
					}
				}
				s, err := formatValue(v, ds.Formats[in])
				if err != nil {
					return nil, fmt.Errorf("datasource inputs.%s (parameter %s): %w", in, param, err)
				}
				pc.inputs = append(pc.inputs, input{name: in, value: s})
			}
			calls = append(calls, pc)
		}
	}
	return calls, nil
}

// periodRange lists the YYYYMM periods from first to last.
func periodRange(first, last int64) ([]int64, error) {
	valid := func(p int64) bool { return p >= 100001 && p <= 999912 && p%100 >= 1 && p%100 <= 12 }
	if !valid(first) || !valid(last) {
		return nil, fmt.Errorf("periods %d..%d: want YYYYMM", first, last)
	}
	if first > last {
		return nil, fmt.Errorf("periods %d..%d: the first is after the last", first, last)
	}
	var out []int64
	for p := first; p <= last; {
		out = append(out, p)
		if len(out) > maxCalls {
			return nil, fmt.Errorf("periods %d..%d: more than %d periods", first, last, maxCalls)
		}
		if p%100 == 12 {
			p = (p/100+1)*100 + 1
		} else {
			p++
		}
	}
	return out, nil
}

// formatValue writes a bound parameter value as Plex reads it: a list as a comma list
// (@PCNs), a date in format's layout (01/02/2006 for @Start_Date), numbers in plain
// decimal, booleans as 1 or 0, NULL as an empty value.
func formatValue(v any, format string) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", nil
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			s, err := formatValue(e, format)
			if err != nil {
				return "", err
			}
			if strings.Contains(s, ",") {
				return "", fmt.Errorf("list element %q contains a comma; Plex reads the list as comma-separated", s)
			}
			parts[i] = s
		}
		return strings.Join(parts, ","), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case bool:
		if x {
			return "1", nil
		}
		return "0", nil
	case string:
		if format == "" {
			return x, nil
		}
		t, err := time.Parse(time.DateOnly, x)
		if err != nil {
			if t, err = time.Parse(time.RFC3339, x); err != nil {
				return "", fmt.Errorf("format %q applies to dates; %q is not one", format, x)
			}
		}
		return t.Format(format), nil
	}
	return "", fmt.Errorf("cannot pass a %T to Plex", v)
}

func declares(cols []string, name string) bool {
	for _, c := range cols {
		if strings.EqualFold(c, name) {
			return true
		}
	}
	return false
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ", ")
}

// dsRows streams the rows of a request's calls one call after another.
type dsRows struct {
	c     *Client
	ctx   context.Context
	ds    source.DataSource
	calls []plannedCall
	i     int // the call being read (or next to open)
	resp  *response
	dec   *decoder
	row   int64 // rows of the current call
	total int64
	tries int // tries of every call so far
	cols  []source.Column
	extra int // leading pcn/period columns
	// addPCN, addPeriod: the fan-out's columns are added (the data source has none).
	addPCN, addPeriod bool
	vals              []any
	err               error
	closed            bool
	// pending: advance has read a row that Next has not returned yet.
	pending bool
	readAt  time.Time
}

func (r *dsRows) Columns() []source.Column { return r.cols }
func (r *dsRows) Values() []any            { return r.vals }
func (r *dsRows) Err() error               { return r.err }

// Tries is how many HTTP requests the calls have taken so far (retries included).
func (r *dsRows) Tries() int { return r.tries }

// ReadAt is when the data was read from Plex (the request's start).
func (r *dsRows) ReadAt() time.Time { return r.readAt }

func (r *dsRows) Next() bool {
	if r.pending {
		r.pending = false
		return true
	}
	return r.advance()
}

// advance reads the next row of the current call, opening calls as the previous ones
// end.
func (r *dsRows) advance() bool {
	if r.err != nil || r.closed {
		return false
	}
	for {
		if r.dec == nil {
			if r.i >= len(r.calls) {
				return false
			}
			if err := r.open(); err != nil {
				r.err = err
				return false
			}
		}
		ok, err := r.dec.next()
		if err != nil {
			r.err = r.readError(err)
			r.endCall()
			return false
		}
		if !ok {
			r.endCall()
			r.i++
			continue
		}
		r.row++
		if err := r.fill(); err != nil {
			r.err = err
			r.endCall()
			return false
		}
		r.total++
		return true
	}
}

func (r *dsRows) what() string {
	pc := r.calls[r.i]
	s := fmt.Sprintf("source %q: data source %d", r.c.name, r.ds.Key)
	if r.ds.Name != "" {
		s += " (" + r.ds.Name + ")"
	}
	if pc.pcn != 0 {
		s += fmt.Sprintf(" for PCN %d", pc.pcn)
	}
	if pc.period != 0 {
		s += fmt.Sprintf(", period %d", pc.period)
	}
	return s
}

func (r *dsRows) open() error {
	pc := r.calls[r.i]
	resp, err := r.c.call(r.ctx, pc.acct, r.what(), envelope(r.ds.Key, r.ds.Name, pc.inputs))
	if resp != nil {
		r.tries += resp.tries
	}
	if err != nil {
		return err
	}
	r.resp, r.dec, r.row = resp, newDecoder(resp.body), 0
	return nil
}

func (r *dsRows) endCall() {
	if r.resp != nil {
		_ = r.resp.body.Close() // before the end of the body: ends the HTTP request
		r.resp.end()
		r.resp, r.dec = nil, nil
	}
}

// readError classes an error met while reading an answer: Plex's own refusal (not
// retried), the caller's cancel, the call's time limit or a lost connection
// (unavailable: the job may be retried).
func (r *dsRows) readError(err error) error {
	what := r.what()
	switch {
	case errors.Is(err, ErrPlex):
		return fmt.Errorf("%s: %w: %w", what, source.ErrRequest, err)
	case r.ctx.Err() != nil:
		return fmt.Errorf("%s: %w", what, r.ctx.Err())
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		return fmt.Errorf("%w: %s: no complete answer within the call's time limit %s", source.ErrUnavailable, what, r.c.timeout)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: %s: the answer was cut off after %d rows: %w", source.ErrUnavailable, what, r.row, err)
	}
	return fmt.Errorf("%w: %s: after %d rows: %w", source.ErrUnavailable, what, r.row, err)
}

// fill checks the decoded row against the declared columns and converts its values.
// The names are checked on each call's first row: Plex addresses columns by position,
// so a column added or moved would otherwise shift every number after it.
func (r *dsRows) fill() error {
	d := r.dec
	want := r.ds.Columns
	if len(d.values) != len(want) || r.row == 1 {
		for i := 0; i < max(len(want), len(d.values)); i++ {
			switch {
			case i >= len(d.values):
				return r.changed("it returns %d columns, the definition declares %d (column %d %q is gone)", len(d.values), len(want), i+1, want[i])
			case i >= len(want):
				return r.changed("column %d is now %q, which the definition does not declare (it declares %d columns)", i+1, d.names[i], len(want))
			case !strings.EqualFold(strings.TrimSpace(d.names[i]), want[i]) && d.names[i] != "":
				return r.changed("column %d is now %q (the definition expects %q)", i+1, d.names[i], want[i])
			}
		}
	}
	pc := r.calls[r.i]
	n := 0
	if r.addPCN {
		r.vals[n] = pc.pcn
		n++
	}
	if r.addPeriod {
		r.vals[n] = pc.period
		n++
	}
	for i, s := range d.values {
		col := r.cols[r.extra+i]
		if d.null[i] || (s == "" && col.Type != source.TypeString) {
			r.vals[r.extra+i] = nil
			continue
		}
		v, err := convert(col.Type, s)
		if err != nil {
			return fmt.Errorf("%s: row %d column %q: %w: %w", r.what(), r.row, col.Name, err, source.ErrConvert)
		}
		r.vals[r.extra+i] = v
	}
	return nil
}

func (r *dsRows) changed(format string, args ...any) error {
	return fmt.Errorf("%s: %w: %w: data source %d changed: %s", r.what(), source.ErrRequest, ErrChanged, r.ds.Key, fmt.Sprintf(format, args...))
}

// usDateTimes are the layouts Plex's US-culture services write dates in.
var usDateTimes = []string{"1/2/2006 3:04:05 PM", "1/2/2006 15:04:05", "1/2/2006"}

// convert is source.Convert, plus Plex's US dates (1/31/2024 12:00:00 AM).
func convert(t source.Type, s string) (any, error) {
	v, err := source.Convert(t, s)
	if err == nil || (t != source.TypeDate && t != source.TypeDateTime) {
		return v, err
	}
	for _, layout := range usDateTimes {
		if tm, perr := time.Parse(layout, strings.TrimSpace(s)); perr == nil {
			return source.Convert(t, tm.Format("2006-01-02T15:04:05"))
		}
	}
	return nil, err
}

func (r *dsRows) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	r.endCall()
	return nil
}
