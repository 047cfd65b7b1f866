package reportdefs

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"rpt/internal/didyoumean"
	"rpt/internal/inputfile"
	"rpt/internal/queue"
	"rpt/internal/source"
)

// Resolve turns given parameter texts (as from `-p name=value`; lists comma separated)
// into the run's parameters: defaults applied, relative words (today, last-month, -7d,
// ...) fixed in loc at now, values checked and made canonical. The result is a JSON
// object with every declared parameter, keys sorted, so the same request always gives
// the same bytes (dedupe and once keys depend on it). An optional parameter that is
// neither given nor defaulted is null. Errors name the parameter and satisfy
// errors.Is(err, ErrInvalid).
func (d *Definition) Resolve(given map[string]string, now time.Time, loc *time.Location) (json.RawMessage, error) {
	if loc == nil {
		loc = time.UTC
	}
	now = now.In(loc)
	if err := checkParamLimits(given); err != nil {
		return nil, err
	}
	var errs []error
	for _, name := range sortedKeys(given) {
		if d.Param(name) == nil {
			msg := fmt.Sprintf("param %q: not declared by report %s (declared: %s)", name, d.Name, d.paramNames())
			errs = append(errs, paramErrorf("%s", didyoumean.Append(msg, name, d.paramList())))
		}
	}
	out := make(map[string]any, len(d.Params))
	for i := range d.Params {
		prm := &d.Params[i]
		text, ok := given[prm.Name]
		if ok && text == "" && prm.Elem() != TypeString {
			// "-p x=" of an optional parameter asks for NULL. Of any other it is a
			// mistake (a shell variable that was empty): taking the default silently
			// would run a report nobody asked for.
			if prm.Required && prm.HasDefault {
				errs = append(errs, paramErrorf("param %q (%s): empty value (leave -p %s out for its default, %s)", prm.Name, prm.Type, prm.Name, prm.Default))
				continue
			}
			if prm.Required {
				errs = append(errs, paramErrorf("param %q (%s): empty value", prm.Name, prm.Type))
				continue
			}
			ok = false
		}
		if !ok {
			if !prm.HasDefault {
				if prm.Required {
					errs = append(errs, paramErrorf("param %q (%s): required (give -p %s=VALUE)", prm.Name, prm.Type, prm.Name))
					continue
				}
				out[prm.Name] = nil
				continue
			}
			text = prm.Default
		}
		v, err := prm.value(text, now)
		if err != nil {
			errs = append(errs, paramErrorf("param %q (%s): invalid value %q: %v", prm.Name, prm.Type, text, err))
			continue
		}
		out[prm.Name] = v
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if err := d.checkRange(out); err != nil {
		return nil, err
	}
	return canonicalJSON(out)
}

// checkRange refuses a reversed range: the definition's range: [from, to] with from
// after to would run and return no rows, which reads as "nothing happened" when it is
// a typo. Either end NULL (optional, not given) is no range to check.
func (d *Definition) checkRange(out map[string]any) error {
	if len(d.Range) != 2 {
		return nil
	}
	from, to := d.Range[0], d.Range[1]
	a, b := out[from], out[to]
	var after bool
	switch av := a.(type) {
	case int64:
		bv, ok := b.(int64)
		after = ok && av > bv
	case string: // dates, canonical YYYY-MM-DD: their order is the strings' order
		bv, ok := b.(string)
		after = ok && av > bv
	}
	if after {
		return paramErrorf("params %q and %q: %s=%v is after %s=%v (the range runs from %s to %s); swap them", from, to, from, a, to, b, from, to)
	}
	return nil
}

// Limits on what a run may be given: a definition declares a handful of parameters
// with short values; thousands of them, or megabytes in one, are a script gone wrong.
const (
	MaxParams     = 200
	MaxParamValue = 64 << 10 // bytes
	maxParamName  = 100
)

// CheckParamLimits refuses more than MaxParams parameters, a name longer than 100
// bytes or a value longer than MaxParamValue, naming the offender; the error satisfies
// errors.Is(err, ErrInvalid). Resolve calls it; callers that collect parameters (the
// command line, the API) call it early to fail before doing any work.
func CheckParamLimits(given map[string]string) error {
	return checkParamLimits(given)
}

func checkParamLimits(given map[string]string) error {
	if len(given) > MaxParams {
		return paramErrorf("%d parameters given; at most %d are accepted", len(given), MaxParams)
	}
	for _, name := range sortedKeys(given) {
		if len(name) > maxParamName {
			return paramErrorf("param %.40q...: name is %d bytes; at most %d", name, len(name), maxParamName)
		}
		if v := given[name]; len(v) > MaxParamValue {
			return paramErrorf("param %q: value is %s; at most %s", name, inputfile.Size(int64(len(v))), inputfile.Size(MaxParamValue))
		}
		// Bytes that are not UTF-8 would be replaced on the way to the database (JSON,
		// the drivers), so a different value than the one given would be queried.
		if i := invalidUTF8(name); i >= 0 {
			return paramErrorf("param %q: name is not UTF-8 text (byte 0x%02x at offset %d)", name, name[i], i)
		}
		if v := given[name]; invalidUTF8(v) >= 0 {
			i := invalidUTF8(v)
			return paramErrorf("param %q: value is not UTF-8 text (byte 0x%02x at offset %d); give parameters in UTF-8", name, v[i], i)
		}
	}
	return nil
}

// invalidUTF8 is the offset of the first byte of s that is not part of valid UTF-8,
// or -1.
func invalidUTF8(s string) int {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return -1
}

func (d *Definition) paramList() []string {
	names := make([]string, len(d.Params))
	for i, p := range d.Params {
		names[i] = p.Name
	}
	return names
}

func (d *Definition) paramNames() string {
	if len(d.Params) == 0 {
		return "none"
	}
	names := make([]string, len(d.Params))
	for i, p := range d.Params {
		names[i] = p.Name
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// canonicalJSON marshals without HTML escaping; encoding/json sorts map keys.
func canonicalJSON(v any) (json.RawMessage, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode params: %w", err)
	}
	return json.RawMessage(bytes.TrimRight(b.Bytes(), "\n")), nil
}

// BindValues converts resolved parameters (Resolve's JSON, as stored with a job) into
// the values source.Query binds: int64 for int and period, string for decimal, string,
// date and enum, bool, nil for NULL, and []any for lists.
func (d *Definition) BindValues(resolved json.RawMessage) (map[string]any, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(resolved, &raw); err != nil {
		return nil, paramErrorf("resolved params: not a JSON object: %v", err)
	}
	out := make(map[string]any, len(d.Params))
	var errs []error
	for _, name := range sortedKeys(raw) {
		if d.Param(name) == nil {
			errs = append(errs, paramErrorf("param %q: not declared by report %s (declared: %s)", name, d.Name, d.paramNames()))
		}
	}
	for i := range d.Params {
		prm := &d.Params[i]
		r, ok := raw[prm.Name]
		if !ok || string(r) == "null" {
			if prm.Required && !ok {
				errs = append(errs, paramErrorf("param %q (%s): missing from resolved params", prm.Name, prm.Type))
			}
			out[prm.Name] = nil
			continue
		}
		v, err := bindValue(prm, r)
		if err != nil {
			errs = append(errs, paramErrorf("param %q (%s): resolved value %s: %v", prm.Name, prm.Type, r, err))
			continue
		}
		out[prm.Name] = v
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func bindValue(prm *Param, r json.RawMessage) (any, error) {
	if !prm.List() {
		return bindScalar(prm.Elem(), prm.Values, r)
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(r, &elems); err != nil {
		return nil, fmt.Errorf("want a list")
	}
	out := make([]any, len(elems))
	for i, e := range elems {
		v, err := bindScalar(prm.Elem(), prm.Values, e)
		if err != nil {
			return nil, fmt.Errorf("element %d: %w", i+1, err)
		}
		out[i] = v
	}
	return out, nil
}

// bindScalar checks a resolved value again (a stored job's params are input too) and
// returns its bind form.
func bindScalar(t string, values []string, r json.RawMessage) (any, error) {
	var text string
	switch t {
	case TypeInt, TypePeriod:
		var n json.Number
		if err := json.Unmarshal(r, &n); err != nil || r[0] == '"' {
			return nil, fmt.Errorf("want a number")
		}
		text = n.String()
	case TypeBool:
		var b bool
		if err := json.Unmarshal(r, &b); err != nil {
			return nil, fmt.Errorf("want true or false")
		}
		return b, nil
	default:
		if err := json.Unmarshal(r, &text); err != nil {
			return nil, fmt.Errorf("want a string")
		}
	}
	if t == TypeDate && !dateRE.MatchString(text) {
		return nil, fmt.Errorf("want YYYY-MM-DD")
	}
	return scalarValue(t, values, text, time.Time{})
}

// JobParams builds the enqueue request for a run of d with resolved parameters:
// the definition snapshot and its sha256, the route (requires:), and the concurrency
// scopes: report:NAME (or group:G) limited to concurrency:, and source:NAME limited to
// the source's max_concurrent when that is set.
func (d *Definition) JobParams(resolved json.RawMessage, sources map[string]source.Config) queue.JobEnqueueParams {
	sum := sha256.Sum256(d.Raw)
	p := queue.JobEnqueueParams{
		Kind:             queue.KindReport,
		Report:           d.Name,
		Definition:       slices.Clone(d.Raw),
		DefinitionSHA256: hex.EncodeToString(sum[:]),
		Params:           slices.Clone(resolved),
		Source:           d.Source,
		MaxAttempts:      d.MaxAttempts,
		Timeout:          d.Timeout,
	}
	p.Route = d.routeFor()
	if d.Concurrency > 0 {
		scope := "report:" + d.Name
		if d.Group != "" {
			scope = "group:" + d.Group
		}
		p.Scopes = append(p.Scopes, queue.Scope{Name: scope, Limit: d.Concurrency})
	}
	if cfg, ok := sources[d.Source]; ok && cfg.MaxConcurrent > 0 {
		p.Scopes = append(p.Scopes, queue.Scope{Name: "source:" + d.Source, Limit: cfg.MaxConcurrent})
	}
	slices.SortFunc(p.Scopes, func(a, b queue.Scope) int { return strings.Compare(a.Name, b.Name) })
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	return p
}

// CanonicalKey is the sha256 (hex) of a report name and its resolved parameters, the
// base of dedupe and once keys. The parameters are re-encoded canonically (sorted keys,
// no spaces) so equal requests give equal keys even if the JSON was reformatted.
func CanonicalKey(report string, resolved json.RawMessage) string {
	body := []byte(resolved)
	dec := json.NewDecoder(bytes.NewReader(resolved))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err == nil {
		if c, err := canonicalJSON(v); err == nil {
			body = c
		}
	}
	h := sha256.New()
	h.Write([]byte(report))
	h.Write([]byte{0})
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}
