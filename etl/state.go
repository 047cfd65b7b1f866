package etl

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// State is an ETL's row of rpt_etl_state: what its last successful load did. A
// per_pcn ETL has a row per partition; States gives it as one State whose Partitions
// are those rows, last success the oldest of theirs (nil while one never loaded).
type State struct {
	Name        string
	Part        string // "" for a whole ETL; "pcn=123681" for a partition
	PCN         int    // a partition's PCN
	Target      string
	Mode        string
	Watermark   string
	JobID       int64 // 0: run in process (rpt etl run)
	Attempt     int
	Runs        int64
	LastSuccess *time.Time // UTC; nil: never loaded
	RowsRead    int64
	RowsWritten int64
	RowsDeleted int64
	Reconciled  int64 // rows the last run's reconcile deleted
	From, To    int
	Loader      string
	Duration    time.Duration
	LastError   string     // the last failed run's error, cleared by a success
	LastErrorAt *time.Time // UTC
	Partitions  []State
}

// States reads every ETL's state from the warehouse; a warehouse without the state
// table has none.
func States(ctx context.Context, wh *sql.DB) (map[string]State, error) {
	out := map[string]State{}
	exists, err := tableExists(ctx, wh, StateTable)
	if err != nil || !exists {
		return out, err
	}
	have, err := tableColumnTypes(ctx, wh, StateTable)
	if err != nil {
		return nil, err
	}
	// Columns a table of an older rpt lacks read as their defaults.
	col := func(name, def string) string {
		if _, ok := have[name]; ok {
			return name
		}
		return def
	}
	rows, err := wh.QueryContext(ctx, `SELECT etl_name, `+col("part", "''")+`, target_table, mode, COALESCE(watermark, ''), job_id, attempt, runs,
		DATE_FORMAT(last_success_at, '%Y-%m-%dT%H:%i:%s.%fZ'), rows_read, rows_written, rows_deleted, `+col("rows_reconciled", "0")+`,
		COALESCE(period_from, 0), COALESCE(period_to, 0), COALESCE(loader, ''), COALESCE(duration_ms, 0),
		COALESCE(`+col("last_error", "NULL")+`, ''), DATE_FORMAT(`+col("last_error_at", "NULL")+`, '%Y-%m-%dT%H:%i:%s.%fZ') FROM `+StateTable)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", StateTable, err)
	}
	defer rows.Close()
	parts := map[string][]State{}
	for rows.Next() {
		var s State
		var last, errAt sql.NullString
		var ms int64
		if err := rows.Scan(&s.Name, &s.Part, &s.Target, &s.Mode, &s.Watermark, &s.JobID, &s.Attempt, &s.Runs, &last, &s.RowsRead, &s.RowsWritten,
			&s.RowsDeleted, &s.Reconciled, &s.From, &s.To, &s.Loader, &ms, &s.LastError, &errAt); err != nil {
			return nil, fmt.Errorf("read %s: %w", StateTable, err)
		}
		if s.LastSuccess, err = parseStateTime(last); err != nil {
			return nil, err
		}
		if s.LastErrorAt, err = parseStateTime(errAt); err != nil {
			return nil, err
		}
		s.Duration = time.Duration(ms) * time.Millisecond
		if s.Part == "" {
			out[s.Name] = s
			continue
		}
		if p, ok := strings.CutPrefix(s.Part, "pcn="); ok {
			s.PCN, _ = strconv.Atoi(p)
		}
		parts[s.Name] = append(parts[s.Name], s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", StateTable, err)
	}
	for name, ps := range parts {
		sort.Slice(ps, func(i, j int) bool { return ps[i].PCN < ps[j].PCN })
		agg := State{Name: name, Target: ps[0].Target, Mode: ps[0].Mode, Partitions: ps, Runs: ps[0].Runs, LastSuccess: ps[0].LastSuccess}
		for _, p := range ps {
			agg.RowsRead += p.RowsRead
			agg.RowsWritten += p.RowsWritten
			agg.RowsDeleted += p.RowsDeleted
			agg.Reconciled += p.Reconciled
			agg.Duration += p.Duration
			agg.Runs = min(agg.Runs, p.Runs)
			if p.LastSuccess == nil || (agg.LastSuccess != nil && p.LastSuccess.Before(*agg.LastSuccess)) {
				agg.LastSuccess = p.LastSuccess
			}
			if p.LastError != "" && agg.LastError == "" {
				agg.LastError = fmt.Sprintf("pcn %d: %s", p.PCN, p.LastError)
				agg.LastErrorAt = p.LastErrorAt
			}
		}
		out[name] = agg
	}
	return out, nil
}

func parseStateTime(s sql.NullString) (*time.Time, error) {
	if !s.Valid {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s.String)
	if err != nil {
		return nil, fmt.Errorf("read %s: time %q: %w", StateTable, s.String, err)
	}
	return &t, nil
}
