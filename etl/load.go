package etl

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"rpt/internal/source"
)

// loader writes the extract's rows into the target inside the load transaction.
type loader struct {
	def     *Definition
	tx      *sql.Tx
	names   []string // target columns, in the extract's order (+ the snapshot column)
	cols    []source.Column
	stamp   any   // snapshot mode: the load time appended to every row
	wmIdx   int   // the update column's index, -1 if none
	pcn     int64 // per_pcn: the partition's PCN (0: none), every row's value at pcnIdx must be it
	pcnIdx  int
	upsert  bool
	opts    Options
	started time.Time

	wm     string // the largest update value seen (watermark text)
	wmTime time.Time
	wmInt  int64
	wmSet  bool
}

func (l *loader) load(ctx context.Context, rows source.Rows, st *Stats) error {
	l.started = time.Now()
	mode := l.opts.Loader
	if mode == "" {
		mode = LoaderInfile
	}
	for {
		var n int64
		var done bool
		var err error
		if mode == LoaderInfile {
			n, done, err = l.infileBatch(ctx, rows, st)
			if err != nil && isLocalInfileRefused(err) && st.Read == 0 && l.opts.Loader == "" {
				mode = LoaderInsert // nothing was read yet: the same rows go by INSERT
				continue
			}
		} else {
			n, done, err = l.insertBatch(ctx, rows, st)
		}
		if err != nil {
			return err
		}
		st.Written += n
		st.Loader = mode
		if l.opts.Progress != nil {
			l.opts.Progress(st.Read, st.Written)
		}
		if done {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// row checks one extract row: its PCN (a partition loads only its own PCN's rows)
// and its update value (the watermark).
func (l *loader) row(vals []any) error {
	if l.pcn != 0 {
		if v, ok := toInt(vals[l.pcnIdx]); !ok || int64(v) != l.pcn {
			return fmt.Errorf("%w: the extract of PCN %d returned a row of PCN %v (per_pcn.column %s): a partition loads only its own rows", ErrInvalid, l.pcn, vals[l.pcnIdx], l.def.PerPCN.Column)
		}
	}
	if l.wmIdx < 0 {
		return nil
	}
	return l.observe(vals[l.wmIdx])
}

// observe notes a row's update value for the watermark.
func (l *loader) observe(v any) error {
	if l.wmIdx < 0 || v == nil {
		return nil
	}
	switch x := v.(type) {
	case int64:
		if !l.wmSet || x > l.wmInt {
			l.wmInt, l.wmSet = x, true
			l.wm = strconv.FormatInt(x, 10)
		}
	case string:
		t, err := time.Parse(time.RFC3339Nano, x)
		if err != nil {
			// Text from a driver that types nothing (ODBC): "YYYY-MM-DD HH:MM:SS[.f]".
			t, err = time.Parse("2006-01-02 15:04:05.999999999", x)
		}
		if err == nil {
			if !l.wmSet || t.After(l.wmTime) {
				l.wmTime, l.wmSet = t, true
				l.wm = t.UTC().Format(mysqlDateTime)
			}
			return nil
		}
		if _, err := time.Parse(time.DateOnly, x); err == nil {
			if !l.wmSet || x > l.wm {
				l.wm, l.wmSet = x, true
			}
			return nil
		}
		return fmt.Errorf("%w: incremental.column %s: value %q is not a datetime, date or integer", ErrInvalid, l.def.Increment.Column, x)
	default:
		return fmt.Errorf("%w: incremental.column %s: a %T is not a datetime, date or integer", ErrInvalid, l.def.Increment.Column, v)
	}
	return nil
}

// infileBatch loads up to BatchRows rows with one LOAD DATA LOCAL INFILE whose file is
// a reader over the extract: memory stays flat whatever the size.
func (l *loader) infileBatch(ctx context.Context, rows source.Rows, st *Stats) (int64, bool, error) {
	r := &tsvReader{l: l, rows: rows, limit: int64(l.opts.BatchRows), st: st}
	name := "rpt-etl-" + randomHex()
	mysql.RegisterReaderHandler(name, func() io.Reader { return r })
	defer mysql.DeregisterReaderHandler(name)
	quoted := make([]string, len(l.names))
	for i, n := range l.names {
		quoted[i] = "`" + n + "`"
	}
	verb := "INTO"
	if l.upsert {
		verb = "REPLACE INTO"
	}
	// Tab-separated, '\' escapes, \N for NULL: the defaults, written out so a server
	// default never changes how a value is read. utf8mb4 whatever the session says.
	q := "LOAD DATA LOCAL INFILE 'Reader::" + name + "' " + verb + " TABLE `" + l.def.Target + "` CHARACTER SET utf8mb4" +
		" FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' (" + strings.Join(quoted, ", ") + ")"
	res, err := l.tx.ExecContext(ctx, q)
	if err != nil {
		if r.err != nil {
			return 0, false, r.err
		}
		return 0, false, err
	}
	if r.err != nil {
		return 0, false, r.err
	}
	affected, _ := res.RowsAffected()
	// LOCAL implies IGNORE: a duplicate key or a value the column cannot hold would be a
	// warning, not an error. Any warning fails the load: nothing is cut or skipped.
	if err := l.warnings(ctx); err != nil {
		return 0, false, err
	}
	if !l.upsert && affected != r.n {
		return 0, false, fmt.Errorf("LOAD DATA took %d of %d rows", affected, r.n)
	}
	return r.n, r.done, nil
}

func (l *loader) warnings(ctx context.Context) error {
	rows, err := l.tx.QueryContext(ctx, "SHOW WARNINGS LIMIT 3")
	if err != nil {
		return fmt.Errorf("read warnings: %w", err)
	}
	defer rows.Close()
	var msgs []string
	for rows.Next() {
		var level, msg string
		var code int
		if err := rows.Scan(&level, &code, &msg); err != nil {
			return fmt.Errorf("read warnings: %w", err)
		}
		msgs = append(msgs, fmt.Sprintf("%s %d: %s", level, code, msg))
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read warnings: %w", err)
	}
	if len(msgs) > 0 {
		return fmt.Errorf("%w: the warehouse did not take every value exactly: %s", ErrInvalid, strings.Join(msgs, "; "))
	}
	return nil
}

// tsvReader formats rows as LOAD DATA's default text format, pulling them from the
// extract as the server reads.
type tsvReader struct {
	l     *loader
	rows  source.Rows
	limit int64
	st    *Stats
	buf   []byte
	n     int64
	done  bool
	err   error
}

func (r *tsvReader) Read(p []byte) (int, error) {
	// Fill up to the driver's packet (len(p)) before handing it over: each Read is one
	// packet on the wire, one write for rpt and one read for the server.
	for len(r.buf) < len(p) && r.err == nil && !r.done && r.n < r.limit {
		r.next()
	}
	if r.err != nil {
		return 0, r.err
	}
	if len(r.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.buf)
	r.buf = r.buf[:copy(r.buf, r.buf[n:])]
	return n, nil
}

// next appends the extract's next row to buf, or sets done or err.
func (r *tsvReader) next() {
	if !r.rows.Next() {
		r.done = true
		if err := r.rows.Err(); err != nil {
			r.err = fmt.Errorf("extract: %w", err)
		}
		return
	}
	r.st.Read++
	vals := r.rows.Values()
	if err := r.l.row(vals); err != nil {
		r.err = err
		return
	}
	for i, v := range vals {
		if i > 0 {
			r.buf = append(r.buf, '\t')
		}
		var err error
		if r.buf, err = appendTSV(r.buf, v, r.l.cols[i]); err != nil {
			r.err = err
			return
		}
	}
	if r.l.stamp != nil {
		r.buf = append(r.buf, '\t')
		r.buf, _ = appendTSV(r.buf, r.l.stamp, source.Column{Type: source.TypeString})
	}
	r.buf = append(r.buf, '\n')
	r.n++
}

// appendTSV writes one value in LOAD DATA's escaped text form: \N for NULL; backslash,
// tab, newline, carriage return and NUL escaped; decimals as their exact text; a
// datetime as "YYYY-MM-DD HH:MM:SS.ffffff" (UTC).
func appendTSV(b []byte, v any, c source.Column) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, '\\', 'N'), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil // digits and a sign: nothing to escape
	}
	s, err := textOf(v, c)
	if err != nil {
		return b, err
	}
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; ch {
		case '\\':
			b = append(b, '\\', '\\')
		case '\t':
			b = append(b, '\\', 't')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case 0:
			b = append(b, '\\', '0')
		default:
			b = append(b, ch)
		}
	}
	return b, nil
}

// textOf is a value as MySQL reads it back exactly; it is also what the INSERT loader
// binds (strings for decimals: never a float).
func textOf(v any, c source.Column) (string, error) {
	switch x := v.(type) {
	case string:
		if c.Type == source.TypeDateTime {
			if m, ok := mysqlFromRFC3339UTC(x); ok {
				return m, nil
			}
			t, err := time.Parse(time.RFC3339Nano, x)
			if err != nil {
				return "", fmt.Errorf("column %s: datetime %q: %w", c.Name, x, err)
			}
			return t.UTC().Format(mysqlDateTime), nil
		}
		return x, nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case bool:
		if x {
			return "1", nil
		}
		return "0", nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return "", fmt.Errorf("column %s: %v cannot be stored", c.Name, x)
		}
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case []byte:
		return string(x), nil
	}
	return "", fmt.Errorf("column %s: unexpected value %T", c.Name, v)
}

// mysqlFromRFC3339UTC is the common case of a datetime carrier without parsing it:
// "YYYY-MM-DDTHH:MM:SS[.f]Z" with at most six fraction digits (what the sources write
// for a UTC time of MySQL's range) is "YYYY-MM-DD HH:MM:SS[.f]", the same text
// time.Format(mysqlDateTime) gives. Anything else (an offset, nanoseconds, another
// shape) is ok=false and goes through time.Parse.
func mysqlFromRFC3339UTC(s string) (string, bool) {
	n := len(s)
	if n < 20 || s[n-1] != 'Z' || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return "", false
	}
	for _, i := range [...]int{0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18} {
		if s[i] < '0' || s[i] > '9' {
			return "", false
		}
	}
	if frac := s[19 : n-1]; frac != "" {
		// RFC3339Nano drops trailing zeros; an empty or over-long fraction is not ours.
		if len(frac) < 2 || len(frac) > 7 || frac[0] != '.' || frac[len(frac)-1] == '0' {
			return "", false
		}
		for i := 1; i < len(frac); i++ {
			if frac[i] < '0' || frac[i] > '9' {
				return "", false
			}
		}
	}
	// Month, day and clock ranges are left to the parse when they are odd.
	if s[5:7] < "01" || s[5:7] > "12" || s[8:10] < "01" || s[8:10] > "31" || s[11:13] > "23" || s[14:16] > "59" || s[17:19] > "59" {
		return "", false
	}
	return s[:10] + " " + s[11:n-1], true
}

// insertRowsMax bounds one INSERT (MySQL's 65535 placeholders).
const insertRowsMax = 1000

// insertBatch loads up to BatchRows rows with multi-row INSERTs (ON DUPLICATE KEY UPDATE
// in incremental mode): the loader where the server refuses local infile.
func (l *loader) insertBatch(ctx context.Context, rows source.Rows, st *Stats) (int64, bool, error) {
	width := len(l.names)
	per := max(1, min(insertRowsMax, 60000/width))
	args := make([]any, 0, per*width)
	var n int64
	flush := func(count int) error {
		if count == 0 {
			return nil
		}
		if _, err := l.tx.ExecContext(ctx, l.insertSQL(count), args...); err != nil {
			return err
		}
		args = args[:0]
		// MariaDB rounds a decimal with too many places with only a note, strict mode
		// or not: any warning or note fails the load.
		return l.warnings(ctx)
	}
	pending := 0
	for n < int64(l.opts.BatchRows) {
		if !rows.Next() {
			if err := rows.Err(); err != nil {
				return 0, false, fmt.Errorf("extract: %w", err)
			}
			if err := flush(pending); err != nil {
				return 0, false, err
			}
			return n, true, nil
		}
		st.Read++
		vals := rows.Values()
		if err := l.row(vals); err != nil {
			return 0, false, err
		}
		for i, v := range vals {
			if v == nil {
				args = append(args, nil)
				continue
			}
			s, err := textOf(v, l.cols[i])
			if err != nil {
				return 0, false, err
			}
			if _, isBytes := v.([]byte); isBytes {
				args = append(args, v)
			} else {
				args = append(args, s)
			}
		}
		if l.stamp != nil {
			args = append(args, l.stamp)
		}
		n++
		pending++
		if pending == per {
			if err := flush(pending); err != nil {
				return 0, false, err
			}
			pending = 0
		}
	}
	if err := flush(pending); err != nil {
		return 0, false, err
	}
	return n, false, nil
}

func (l *loader) insertSQL(rows int) string {
	quoted := make([]string, len(l.names))
	for i, n := range l.names {
		quoted[i] = "`" + n + "`"
	}
	one := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(l.names)), ", ") + ")"
	var b strings.Builder
	b.WriteString("INSERT INTO `" + l.def.Target + "` (" + strings.Join(quoted, ", ") + ") VALUES ")
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(one)
	}
	if l.upsert {
		b.WriteString(" ON DUPLICATE KEY UPDATE ")
		for i, q := range quoted {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(q + " = VALUES(" + q + ")")
		}
	}
	return b.String()
}

func randomHex() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
