package etl

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// State is an ETL's row of rpt_etl_state: what its last successful load did.
type State struct {
	Name        string
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
	From, To    int
	Loader      string
	Duration    time.Duration
}

// States reads every ETL's state from the warehouse; a warehouse without the state
// table has none.
func States(ctx context.Context, wh *sql.DB) (map[string]State, error) {
	out := map[string]State{}
	exists, err := tableExists(ctx, wh, StateTable)
	if err != nil || !exists {
		return out, err
	}
	rows, err := wh.QueryContext(ctx, `SELECT etl_name, target_table, mode, COALESCE(watermark, ''), job_id, attempt, runs,
		DATE_FORMAT(last_success_at, '%Y-%m-%dT%H:%i:%s.%fZ'), rows_read, rows_written, rows_deleted,
		COALESCE(period_from, 0), COALESCE(period_to, 0), COALESCE(loader, ''), COALESCE(duration_ms, 0) FROM `+StateTable)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", StateTable, err)
	}
	defer rows.Close()
	for rows.Next() {
		var s State
		var last sql.NullString
		var ms int64
		if err := rows.Scan(&s.Name, &s.Target, &s.Mode, &s.Watermark, &s.JobID, &s.Attempt, &s.Runs, &last, &s.RowsRead, &s.RowsWritten,
			&s.RowsDeleted, &s.From, &s.To, &s.Loader, &ms); err != nil {
			return nil, fmt.Errorf("read %s: %w", StateTable, err)
		}
		if last.Valid {
			t, err := time.Parse(time.RFC3339Nano, last.String)
			if err != nil {
				return nil, fmt.Errorf("read %s: last_success_at %q: %w", StateTable, last.String, err)
			}
			s.LastSuccess = &t
		}
		s.Duration = time.Duration(ms) * time.Millisecond
		out[s.Name] = s
	}
	return out, rows.Err()
}
