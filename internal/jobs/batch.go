package jobs

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"rpt/internal/errclass"
	"rpt/internal/queue"
	"rpt/reportdefs"
)

// MaxBatch bounds the jobs of one SubmitMany (one `rpt submit --from`): all of them go
// to the queue in one transaction.
const MaxBatch = 100_000

// ParamSet is one parameter set of a batch file: the values as given (parsed by the
// report's types at submit) and the line it came from.
type ParamSet struct {
	Line   int
	Params map[string]string
}

// ParamSetFormats are the formats ParseParamSets reads.
const (
	FormatJSONLines = "jsonl"
	FormatCSV       = "csv"
)

// ParseParamSets reads parameter sets, one per job: JSON lines (one object per line,
// {"name": value}; a value is a string, a number, a boolean or a list of them, which
// becomes the comma-separated list -p takes; blank lines are skipped) or CSV (a header
// row of parameter names, then one row per job; an empty cell leaves that parameter
// to its default). format "" guesses: JSON lines when the first non-blank character is
// "{", else CSV. Every problem names its line (and field); the first few are returned
// together, and none of the sets is returned then.
func ParseParamSets(data []byte, format string) ([]ParamSet, error) {
	if format == "" {
		format = FormatCSV
		if t := bytes.TrimLeft(data, " \t\r\n\ufeff"); len(t) > 0 && t[0] == '{' {
			format = FormatJSONLines
		}
	}
	var sets []ParamSet
	var errs errList
	switch format {
	case FormatJSONLines:
		sets = parseJSONLines(data, &errs)
	case FormatCSV:
		sets = parseCSV(data, &errs)
	default:
		return nil, errclass.Errorf(errclass.Invalid, "format %q: want %s or %s", format, FormatJSONLines, FormatCSV)
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	if len(sets) == 0 {
		return nil, errclass.New(errclass.Invalid, "no parameter sets: the input has no jobs")
	}
	if len(sets) > MaxBatch {
		return nil, errclass.Errorf(errclass.Invalid, "%d parameter sets; at most %d per submit", len(sets), MaxBatch)
	}
	return sets, nil
}

// errList collects the first maxErrs problems of an input.
type errList struct {
	msgs []string
	more int
}

const maxErrs = 10

func (e *errList) add(format string, args ...any) {
	if len(e.msgs) >= maxErrs {
		e.more++
		return
	}
	e.msgs = append(e.msgs, fmt.Sprintf(format, args...))
}

func (e *errList) err() error {
	if len(e.msgs) == 0 {
		return nil
	}
	msg := strings.Join(e.msgs, "\n")
	if e.more > 0 {
		msg += fmt.Sprintf("\n(%d more)", e.more)
	}
	return errclass.New(errclass.Invalid, msg)
}

func parseJSONLines(data []byte, errs *errList) []ParamSet {
	var sets []ParamSet
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), len(data)+1)
	line := 0
	for sc.Scan() {
		line++
		text := bytes.TrimSpace(sc.Bytes())
		if line == 1 {
			text = bytes.TrimPrefix(text, []byte("\ufeff"))
		}
		if len(text) == 0 {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(text))
		dec.UseNumber()
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil || obj == nil {
			errs.add("line %d: not a JSON object: %s", line, jsonProblem(err))
			continue
		}
		if _, err := dec.Token(); err != io.EOF {
			errs.add("line %d: more than one JSON value on the line", line)
			continue
		}
		set := ParamSet{Line: line, Params: make(map[string]string, len(obj))}
		ok := true
		for name, v := range obj {
			s, err := ParamText(v)
			if err != nil {
				errs.add("line %d: field %q: %v", line, name, err)
				ok = false
				continue
			}
			set.Params[name] = s
		}
		if ok && checkSet(set, errs) {
			sets = append(sets, set)
		}
	}
	if err := sc.Err(); err != nil {
		errs.add("line %d: %v", line+1, err)
	}
	return sets
}

func jsonProblem(err error) string {
	if err == nil {
		return "null"
	}
	return err.Error()
}

// ParamText is a JSON value (decoded with UseNumber) as the text -p takes: a string as
// it is, a number as written, a boolean, a list of those joined by commas (a list<T>,
// so no element may hold a comma). Null and objects are errors; a caller for which null
// means "not given" checks it first. rpt submit --from and the HTTP API both use it.
func ParamText(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case json.Number:
		return x.String(), nil
	case bool:
		return strconv.FormatBool(x), nil
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			switch e.(type) {
			case []any, map[string]any, nil:
				return "", fmt.Errorf("list element %d: want a string, number or boolean", i)
			}
			s, err := ParamText(e)
			if err != nil {
				return "", err
			}
			if strings.Contains(s, ",") {
				return "", fmt.Errorf("list element %d: %q contains a comma", i, s)
			}
			parts[i] = s
		}
		return strings.Join(parts, ","), nil
	case nil:
		return "", errors.New("null: leave the field out for the parameter's default")
	}
	return "", errors.New("an object: want a string, number, boolean or list")
}

func parseCSV(data []byte, errs *errList) []ParamSet {
	r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, []byte("\ufeff"))))
	r.FieldsPerRecord = 0
	header, err := r.Read()
	if err == io.EOF {
		return nil
	}
	if err != nil {
		errs.add("%s", csvProblem(err))
		return nil
	}
	seen := map[string]bool{}
	for i, h := range header {
		h = strings.TrimSpace(h)
		header[i] = h
		switch {
		case h == "":
			errs.add("line 1: column %d: empty parameter name in the header", i+1)
		case seen[h]:
			errs.add("line 1: column %d: parameter %q named twice in the header", i+1, h)
		}
		seen[h] = true
	}
	var sets []ParamSet
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		line, _ := r.FieldPos(0)
		if err != nil {
			errs.add("%s", csvProblem(err))
			if errors.Is(err, csv.ErrFieldCount) {
				continue
			}
			break
		}
		set := ParamSet{Line: line, Params: map[string]string{}}
		for i, v := range rec {
			if v != "" {
				set.Params[header[i]] = v
			}
		}
		if checkSet(set, errs) {
			sets = append(sets, set)
		}
	}
	return sets
}

func csvProblem(err error) string {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		if pe.Column > 0 {
			return fmt.Sprintf("line %d: column %d: %v", pe.Line, pe.Column, pe.Err)
		}
		return fmt.Sprintf("line %d: %v", pe.Line, pe.Err)
	}
	return err.Error()
}

// checkSet applies -p's bounds to one set.
func checkSet(set ParamSet, errs *errList) bool {
	if len(set.Params) > reportdefs.MaxParams {
		errs.add("line %d: %d parameters; at most %d", set.Line, len(set.Params), reportdefs.MaxParams)
		return false
	}
	ok := true
	for name, v := range set.Params {
		if len(v) > reportdefs.MaxParamValue {
			errs.add("line %d: field %q: value is %d bytes; at most %d", set.Line, name, len(v), reportdefs.MaxParamValue)
			ok = false
		}
	}
	return ok
}

// ItemError is a SubmitMany request that was refused: Index is its place in the
// requests (from 0). Nothing of the batch was queued.
type ItemError struct {
	Index int
	Err   error
}

func (e *ItemError) Error() string { return fmt.Sprintf("job %d: %v", e.Index, e.Err) }
func (e *ItemError) Unwrap() error { return e.Err }

// SubmitMany queues many runs at once, all or nothing: every request is resolved and
// checked as Submit does (a refused one is an *ItemError naming its index, and nothing
// is queued), then all go to the queue in one transaction (queue.BatchEnqueuer), each
// with a submit token of its own unless given, so a retried batch whose answer was lost
// finds the jobs it queued. Keys (dedupe, once, token) are exact within the batch and
// against the queue: a request whose key an earlier one of the batch holds returns
// that job. One wake-up is published when anything was queued.
func (s *Service) SubmitMany(ctx context.Context, reqs []SubmitRequest) ([]SubmitResult, error) {
	if len(reqs) == 0 {
		return nil, errclass.New(errclass.Invalid, "submit: no jobs")
	}
	if len(reqs) > MaxBatch {
		return nil, errclass.Errorf(errclass.Invalid, "submit: %d jobs; at most %d at once", len(reqs), MaxBatch)
	}
	be, ok := s.Store.(queue.BatchEnqueuer)
	if !ok {
		return nil, errclass.Errorf(errclass.Internal, "submit: this queue store (%T) cannot enqueue in batches", s.Store)
	}
	cat, err := s.Catalog()
	if err != nil {
		return nil, err
	}
	one := *s // the catalogue read once for every job
	one.catalog = cat
	now := s.now()
	ps := make([]queue.JobEnqueueParams, len(reqs))
	own := make([]bool, len(reqs))
	targets := make([][]string, len(reqs))
	for i, r := range reqs {
		p, t, err := one.prepare(r, now)
		if err != nil {
			return nil, &ItemError{Index: i, Err: err}
		}
		targets[i] = t
		if p.SubmitToken == "" {
			own[i] = true
			p.SubmitToken = NewSubmitToken(r.Origin)
		}
		ps[i] = p
	}
	var res []queue.JobEnqueueResult
	err = s.retry(ctx, func(ctx context.Context) (err error) {
		res, err = be.JobEnqueueBatch(ctx, ps)
		return err
	})
	if err != nil {
		var ie *ItemError
		if errors.As(err, &ie) {
			return nil, err
		}
		return nil, fmt.Errorf("submit %d jobs: %w", len(reqs), err)
	}
	for i, t := range targets {
		if len(t) == 0 {
			continue
		}
		// As Submit does: after the enqueue; a retried batch finds its jobs by their
		// tokens and adds the targets again (the add keeps those a job has).
		id := res[i].Job.ID
		if err := s.retry(ctx, func(ctx context.Context) error { return s.Store.DeliveryAdd(ctx, id, t) }); err != nil {
			return nil, fmt.Errorf("submit %d jobs: job %d queued, but its deliveries were not recorded: %w", len(reqs), id, err)
		}
	}
	out := make([]SubmitResult, len(res))
	queued := false
	for i, r := range res {
		out[i] = SubmitResult{Job: r.Job, Existing: r.Existing}
		out[i].Queued = !r.Existing || (own[i] && r.Job.SubmitToken == ps[i].SubmitToken)
		queued = queued || out[i].Queued
	}
	if queued && s.Publisher != nil {
		s.Publisher.PublishWake()
	}
	return out, nil
}
