package etl

import (
	"context"
	"database/sql"
	"fmt"
	"math/big"
	"slices"
	"strings"

	"rpt/internal/source"
)

// VerifyGroup is one group's comparison: the rows and the exact sums of the numeric
// columns in the source's extract and in the target, per value of the first key column
// (one group when the ETL has no key).
type VerifyGroup struct {
	Group      string
	SourceRows int64
	TargetRows int64
	SourceSums map[string]string
	TargetSums map[string]string
	Differs    []string // "rows" and the columns whose sums differ
}

// Verify compares the whole extract of an ETL (every period, every row since the first
// run) with its target table: counts and sums of every integer and decimal column, per
// value of the first key column, exactly (decimals as rationals, never floats). Snapshot
// ETLs keep every load and are not compared. It writes nothing.
func Verify(ctx context.Context, def *Definition, src source.Source, wh *sql.DB) ([]VerifyGroup, error) {
	if def.Mode == ModeSnapshot {
		return nil, fmt.Errorf("%w: etl %s: a snapshot keeps every load; verify compares one set", ErrInvalid, def.Name)
	}
	params := map[string]any{}
	where := ""
	switch def.Mode {
	case ModeIncremental:
		if def.SQL != "" {
			params[ParamSince] = def.Increment.Initial
		}
	case ModePeriodRange:
		params[ParamFromPeriod], params[ParamToPeriod] = int64(0), int64(999912)
	}
	// A per_pcn ETL's extract is read per PCN (each with its own account), the
	// groups summed over all of them.
	pcns := []int{0}
	if def.PerPCN != nil {
		var err error
		if pcns, err = partitionPCNs(def, src); err != nil {
			return nil, err
		}
	}
	type acc struct {
		n    int64
		sums []*big.Rat
	}
	srcAcc := map[string]*acc{}
	var cols []source.Column
	group := -1
	var numeric []int
	for _, pcn := range pcns {
		where := where
		if pcn != 0 {
			params[ParamPCN] = int64(pcn)
			if def.Table != "" {
				where = quoteIdent(src.Driver(), def.PerPCN.Column) + " = :" + ParamPCN
			}
		}
		err := func() error {
			rows, err := source.Run(ctx, src, def.request(src.Driver(), params, where), def.Columns)
			if err != nil {
				return fmt.Errorf("etl %s: extract: %w", def.Name, err)
			}
			defer rows.Close()
			if cols == nil {
				cols = rows.Columns()
				for i, c := range cols {
					if len(def.Key) > 0 && strings.EqualFold(c.Name, def.Key[0]) {
						group = i
						continue
					}
					if c.Type == source.TypeInt || c.Type == source.TypeDecimal {
						numeric = append(numeric, i)
					}
				}
			}
			for rows.Next() {
				v := rows.Values()
				g := ""
				if group >= 0 {
					g = fmt.Sprint(v[group])
				}
				a := srcAcc[g]
				if a == nil {
					a = &acc{sums: make([]*big.Rat, len(numeric))}
					for i := range a.sums {
						a.sums[i] = new(big.Rat)
					}
					srcAcc[g] = a
				}
				a.n++
				for i, ci := range numeric {
					if v[ci] == nil {
						continue
					}
					r, ok := new(big.Rat).SetString(fmt.Sprint(v[ci]))
					if !ok {
						return fmt.Errorf("etl %s: column %s: %v is not a number", def.Name, cols[ci].Name, v[ci])
					}
					a.sums[i].Add(a.sums[i], r)
				}
			}
			if err := rows.Err(); err != nil {
				return fmt.Errorf("etl %s: extract: %w", def.Name, err)
			}
			return nil
		}()
		if err != nil {
			return nil, err
		}
	}

	sel := []string{"''"}
	groupBy := ""
	if group >= 0 {
		sel[0] = "CAST(`" + cols[group].Name + "` AS CHAR)"
		groupBy = " GROUP BY 1"
	}
	sel = append(sel, "COUNT(*)")
	for _, ci := range numeric {
		sel = append(sel, "CAST(SUM(`"+cols[ci].Name+"`) AS CHAR)")
	}
	trows, err := wh.QueryContext(ctx, "SELECT "+strings.Join(sel, ", ")+" FROM `"+def.Target+"`"+groupBy)
	if err != nil {
		return nil, fmt.Errorf("etl %s: read %s: %w", def.Name, def.Target, err)
	}
	defer trows.Close()
	tgt := map[string]*acc{}
	for trows.Next() {
		var g string
		var n int64
		sums := make([]sql.NullString, len(numeric))
		dest := []any{&g, &n}
		for i := range sums {
			dest = append(dest, &sums[i])
		}
		if err := trows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("etl %s: read %s: %w", def.Name, def.Target, err)
		}
		a := &acc{n: n, sums: make([]*big.Rat, len(numeric))}
		for i, s := range sums {
			a.sums[i] = new(big.Rat)
			if s.Valid {
				if _, ok := a.sums[i].SetString(s.String); !ok {
					return nil, fmt.Errorf("etl %s: %s: sum %q is not a number", def.Name, def.Target, s.String)
				}
			}
		}
		tgt[g] = a
	}
	if err := trows.Err(); err != nil {
		return nil, err
	}
	keys := map[string]bool{}
	for g := range srcAcc {
		keys[g] = true
	}
	for g := range tgt {
		keys[g] = true
	}
	var out []VerifyGroup
	for g := range keys {
		s, t := srcAcc[g], tgt[g]
		vg := VerifyGroup{Group: g, SourceSums: map[string]string{}, TargetSums: map[string]string{}}
		if s != nil {
			vg.SourceRows = s.n
		}
		if t != nil {
			vg.TargetRows = t.n
		}
		if vg.SourceRows != vg.TargetRows {
			vg.Differs = append(vg.Differs, "rows")
		}
		for i, ci := range numeric {
			name := cols[ci].Name
			ss, ts := new(big.Rat), new(big.Rat)
			if s != nil {
				ss = s.sums[i]
			}
			if t != nil {
				ts = t.sums[i]
			}
			vg.SourceSums[name], vg.TargetSums[name] = ratText(ss), ratText(ts)
			if ss.Cmp(ts) != 0 {
				vg.Differs = append(vg.Differs, name)
			}
		}
		out = append(out, vg)
	}
	slices.SortFunc(out, func(a, b VerifyGroup) int { return strings.Compare(a.Group, b.Group) })
	return out, nil
}

// ratText is an exact decimal text of r (sums of decimals are finite decimals).
func ratText(r *big.Rat) string {
	for prec := 0; prec <= 30; prec++ {
		if s := r.FloatString(prec); mustRat(s).Cmp(r) == 0 {
			return s
		}
	}
	return r.RatString()
}

func mustRat(s string) *big.Rat {
	r, _ := new(big.Rat).SetString(s)
	return r
}
