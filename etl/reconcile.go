package etl

// Reconcile: source deletes. An incremental load reads rows changed since its
// watermark, so a row deleted in the source stays in the target. A reconcile reads the
// source's keys within a range (reconcile.within: the run's lookback window, or every
// row; `rpt etl run --reconcile` asks for every row once) into a temporary table of the
// load's own transaction, and deletes the target rows in that range (and partition)
// whose keys are not among them, after the load and before the state write and the
// fence check: a failed or fenced-out run deletes nothing. The guard refuses to delete
// more than reconcile.max_delete of the rows compared unless forced, as the shrink
// guard does for a full load. CREATE/DROP TEMPORARY TABLE do not commit the
// transaction.

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"rpt/internal/source"
)

// reconcileOf is the reconcile a run does: --reconcile's sweep over every row, else
// the definition's; nil for none. A full load replaces every row, so it has none.
func reconcileOf(def *Definition, opts Options) *Reconcile {
	if def.Mode == ModeFull || def.Mode == ModeSnapshot {
		return nil
	}
	if opts.Reconcile {
		rc := Reconcile{Within: WithinAll, MaxDelete: DefaultMaxDelete}
		if def.Reconcile != nil {
			rc.MaxDelete = def.Reconcile.MaxDelete
			if !refersTo(def.Reconcile.KeysSQL, ParamSince) {
				rc.KeysSQL = def.Reconcile.KeysSQL
			}
		}
		return &rc
	}
	return def.Reconcile
}

func refersTo(q, param string) bool {
	for _, r := range source.ParamRefs(source.DialectMySQL, q) {
		if r.Name == param {
			return true
		}
	}
	return false
}

// reconcile deletes the target rows of the range whose keys the source lacks.
func reconcile(ctx context.Context, tx *sql.Tx, def *Definition, src source.Source, rc *Reconcile, opts Options, since any, pcn int, st *Stats) error {
	if rc.Within == WithinLookback && since == nil {
		return nil // the first run: no window yet, and it loaded every row
	}
	if rc.KeysSQL == "" && def.Table == "" {
		return fmt.Errorf("%w: etl %s: --reconcile needs the source's keys: a table: extract, or reconcile.keys_sql without :since", ErrInvalid, def.Name)
	}
	// The source's keys in the range.
	params := map[string]any{}
	var srcConds, tgtConds []string
	var tgtArgs []any
	if rc.Within == WithinLookback {
		col := def.Increment.Column
		params[ParamSince] = since
		c := quoteIdent(src.Driver(), col) + " >= :" + ParamSince
		t := "t.`" + col + "` >= ?"
		if def.Increment.Nulls == NullsReload {
			c += " OR " + quoteIdent(src.Driver(), col) + " IS NULL"
			t += " OR t.`" + col + "` IS NULL"
		}
		srcConds, tgtConds, tgtArgs = append(srcConds, c), append(tgtConds, t), append(tgtArgs, since)
	}
	if pcn != 0 {
		params[ParamPCN] = int64(pcn)
		srcConds = append(srcConds, quoteIdent(src.Driver(), def.PerPCN.Column)+" = :"+ParamPCN)
		tgtConds = append(tgtConds, "t.`"+def.PerPCN.Column+"` = ?")
		tgtArgs = append(tgtArgs, pcn)
	}
	q := rc.KeysSQL
	if q == "" {
		keys := make([]string, len(def.Key))
		for i, k := range def.Key {
			keys[i] = quoteIdent(src.Driver(), k)
		}
		q = "SELECT " + strings.Join(keys, ", ") + " FROM " + quoteSourceName(src.Driver(), def.Table)
		if len(srcConds) > 0 {
			q += " WHERE (" + strings.Join(srcConds, ") AND (") + ")"
		}
	}
	// The definition's columns: overrides of the key columns only: the others are not
	// in this result.
	types := map[string]source.Type{}
	for name, t := range def.Columns {
		for _, k := range def.Key {
			if strings.EqualFold(name, k) {
				types[name] = t
			}
		}
	}
	rows, err := source.Run(ctx, src, source.Request{SQL: q, Params: params}, types)
	if err != nil {
		return fmt.Errorf("etl %s: reconcile: read the source's keys: %w", def.Name, err)
	}
	defer rows.Close()
	if n := len(rows.Columns()); n != len(def.Key) {
		return fmt.Errorf("%w: etl %s: reconcile.keys_sql returns %d columns, want the %d of target.key (%s)", ErrInvalid, def.Name, n, len(def.Key), strings.Join(def.Key, ", "))
	}

	tmp := "rpt_etl_keys_" + randomHex()
	quoted := make([]string, len(def.Key))
	for i, k := range def.Key {
		quoted[i] = "`" + k + "`"
	}
	keyList := strings.Join(quoted, ", ")
	if _, err := tx.ExecContext(ctx, "CREATE TEMPORARY TABLE `"+tmp+"` (INDEX ("+keyList+")) ENGINE=InnoDB SELECT "+keyList+" FROM `"+def.Target+"` LIMIT 0"); err != nil {
		return fmt.Errorf("etl %s: reconcile: create the key table: %w", def.Name, err)
	}
	defer func() { _, _ = tx.ExecContext(context.WithoutCancel(ctx), "DROP TEMPORARY TABLE IF EXISTS `"+tmp+"`") }()

	width := len(def.Key)
	per := max(1, min(insertRowsMax, 60000/width))
	one := "(" + strings.TrimSuffix(strings.Repeat("?, ", width), ", ") + ")"
	args := make([]any, 0, per*width)
	pending := 0
	cols := rows.Columns()
	flush := func() error {
		if pending == 0 {
			return nil
		}
		stmt := "INSERT INTO `" + tmp + "` (" + keyList + ") VALUES " + strings.TrimSuffix(strings.Repeat(one+", ", pending), ", ")
		if _, err := tx.ExecContext(ctx, stmt, args...); err != nil {
			return fmt.Errorf("etl %s: reconcile: load the source's keys: %w", def.Name, err)
		}
		args, pending = args[:0], 0
		return nil
	}
	for rows.Next() {
		for i, v := range rows.Values() {
			if v == nil {
				args = append(args, nil)
				continue
			}
			s, err := textOf(v, cols[i])
			if err != nil {
				return fmt.Errorf("etl %s: reconcile: %w", def.Name, err)
			}
			args = append(args, s)
		}
		if pending++; pending == per {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("etl %s: reconcile: read the source's keys: %w", def.Name, err)
	}
	if err := flush(); err != nil {
		return err
	}

	where := "1 = 1"
	if len(tgtConds) > 0 {
		where = "(" + strings.Join(tgtConds, ") AND (") + ")"
	}
	match := make([]string, len(def.Key))
	for i, k := range quoted {
		match[i] = "k." + k + " <=> t." + k
	}
	missing := where + " AND NOT EXISTS (SELECT 1 FROM `" + tmp + "` k WHERE " + strings.Join(match, " AND ") + ")"
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM `"+def.Target+"` t WHERE "+where, tgtArgs...).Scan(&st.Compared); err != nil {
		return fmt.Errorf("etl %s: reconcile: count: %w", def.Name, err)
	}
	var n int64
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM `"+def.Target+"` t WHERE "+missing, tgtArgs...).Scan(&n); err != nil {
		return fmt.Errorf("etl %s: reconcile: count: %w", def.Name, err)
	}
	if n == 0 {
		return nil
	}
	if !opts.Force && float64(n) > rc.MaxDelete*float64(st.Compared) {
		return fmt.Errorf("%w: etl %s: reconcile would delete %d of the %d rows of %s it compared (within: %s), more than reconcile.max_delete %.2f; refusing (--force to delete them)",
			ErrGuard, def.Name, n, st.Compared, def.Target, rc.Within, rc.MaxDelete)
	}
	res, err := tx.ExecContext(ctx, "DELETE t FROM `"+def.Target+"` t WHERE "+missing, tgtArgs...)
	if err != nil {
		return fmt.Errorf("etl %s: reconcile: delete: %w", def.Name, err)
	}
	st.Reconciled, _ = res.RowsAffected()
	return nil
}
