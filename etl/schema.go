package etl

// How a target follows its source's columns. Every successful load records the
// extract's columns (name, portable type, and the exact MySQL type when the source
// says it) on its state row. The next load compares:
//
//   - a column the target lacks is added (ALTER TABLE ADD COLUMN, NULL, with the
//     source's exact type: DECIMAL(p,s), DATETIME(n), VARCHAR(n) utf8mb4, ...), outside
//     the load transaction because DDL commits in MySQL; the load then starts again.
//     A decimal whose precision the source does not say (a web-service or ODBC column)
//     is not guessed: the error names the column and asks for the ALTER.
//   - a column the last load had and this extract lacks, while the target still has
//     it, is an error naming it (its values would silently stop being loaded).
//   - a column whose type changed is an error naming it and both types, until the
//     target's column has the new type (the operator's ALTER ... MODIFY).

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"rpt/internal/source"
)

// extractColumn is one column of an extract as recorded in rpt_etl_state.
type extractColumn struct {
	Name string      `json:"name"`
	Type source.Type `json:"type"`
	SQL  string      `json:"sql,omitempty"` // the exact MySQL type, when the source said it
}

// errAddColumns asks Run to add columns to the target and load again.
type errAddColumns struct{ cols []extractColumn }

func (e *errAddColumns) Error() string {
	names := make([]string, len(e.cols))
	for i, c := range e.cols {
		names[i] = c.Name
	}
	return "new source columns: " + strings.Join(names, ", ")
}

// checkSchema compares the extract's columns with the last load's and the target's;
// it returns the columns to record (JSON), an *errAddColumns, or an ErrInvalid naming
// a removed or retyped column.
func checkSchema(ctx context.Context, tx *sql.Tx, def *Definition, src source.Source, rows source.Rows, prevJSON string) (string, error) {
	cols := rows.Columns()
	var details []source.ColumnDetail
	if d, ok := rows.(source.Detailed); ok {
		details = d.ColumnDetails()
	}
	var declared map[string]string
	if src.Driver() == source.DialectMySQL && def.Table != "" {
		var err error
		if declared, err = sourceColumnTypes(ctx, src, def.Table); err != nil {
			return "", fmt.Errorf("etl %s: %w", def.Name, err)
		}
	}
	cur := make([]extractColumn, len(cols))
	byName := map[string]extractColumn{}
	for i, c := range cols {
		cur[i] = extractColumn{Name: c.Name, Type: c.Type}
		if src.Driver() == source.DialectMySQL {
			if ct, ok := declared[strings.ToLower(c.Name)]; ok {
				cur[i].SQL = mysqlDeclaredDDL(c, ct)
			} else if i < len(details) {
				cur[i].SQL = mysqlColumnDDL(c, details[i])
			}
		}
		byName[strings.ToLower(c.Name)] = cur[i]
	}
	target, err := tableColumnTypes(ctx, tx, def.Target)
	if err != nil {
		return "", err
	}
	var prev []extractColumn
	if prevJSON != "" {
		if err := json.Unmarshal([]byte(prevJSON), &prev); err != nil {
			return "", fmt.Errorf("etl %s: extract_columns in %s: %w", def.Name, StateTable, err)
		}
	}
	for _, p := range prev {
		if _, ok := byName[strings.ToLower(p.Name)]; ok {
			continue
		}
		if _, still := target[strings.ToLower(p.Name)]; still {
			return "", fmt.Errorf("%w: etl %s: source column %q is gone (the last load had it): %s.%s would stop being loaded; restore it in the source, or drop it from the target (ALTER TABLE %s DROP COLUMN %s) if it is gone for good",
				ErrInvalid, def.Name, p.Name, def.Target, p.Name, def.Target, p.Name)
		}
	}
	var adds []extractColumn
	for _, c := range cur {
		if _, ok := target[strings.ToLower(c.Name)]; ok {
			continue
		}
		if !targetNameRE().MatchString(c.Name) {
			return "", fmt.Errorf("%w: etl %s: new source column %q: not a name rpt adds to a table (letters, digits, '_', up to 64)", ErrInvalid, def.Name, c.Name)
		}
		if c.SQL == "" {
			c.SQL = portableDDL(c.Type)
		}
		if c.SQL == "" {
			return "", fmt.Errorf("%w: etl %s: new source column %q is %s, and source %q does not say its precision: add it to the target yourself (ALTER TABLE %s ADD COLUMN %s DECIMAL(p,s) NULL); rpt does not guess money's scale",
				ErrInvalid, def.Name, c.Name, c.Type, src.Name(), def.Target, c.Name)
		}
		adds = append(adds, c)
	}
	if len(adds) > 0 {
		return "", &errAddColumns{cols: adds}
	}
	for _, p := range prev {
		c, ok := byName[strings.ToLower(p.Name)]
		if !ok {
			continue
		}
		changed := p.Type != c.Type
		if p.SQL != "" && c.SQL != "" {
			changed = normType(p.SQL) != normType(c.SQL)
		}
		if !changed {
			continue
		}
		want := c.SQL
		if want == "" {
			want = portableDDL(c.Type)
		}
		if want != "" && normType(target[strings.ToLower(c.Name)]) == normType(want) {
			continue // the operator changed the target's column to match
		}
		from, to := typeText(p), typeText(c)
		fix := want
		if fix == "" {
			fix = "the new type"
		}
		return "", fmt.Errorf("%w: etl %s: source column %q changed type from %s to %s, and %s.%s is %s: change the target column (ALTER TABLE %s MODIFY %s %s) and run again",
			ErrInvalid, def.Name, c.Name, from, to, def.Target, c.Name, target[strings.ToLower(c.Name)], def.Target, c.Name, fix)
	}
	b, err := json.Marshal(cur)
	return string(b), err
}

var targetNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`) })

func typeText(c extractColumn) string {
	if c.SQL != "" {
		return c.SQL
	}
	return string(c.Type)
}

// addColumns adds new source columns to the target, each NULL (the rows loaded before
// have no value for it). A column another run added meanwhile is no error.
func addColumns(ctx context.Context, wh *sql.DB, def *Definition, cols []extractColumn) error {
	for _, c := range cols {
		if err := alter(ctx, wh, "ALTER TABLE `"+def.Target+"` ADD COLUMN `"+c.Name+"` "+c.SQL+" NULL"); err != nil && !isDuplicateColumn(err) {
			return fmt.Errorf("etl %s: add column %s %s to %s: %w", def.Name, c.Name, c.SQL, def.Target, err)
		}
	}
	return nil
}

// portableDDL is the MySQL type of a column the source says only the portable type
// of: wide enough for every value of that type, exact. A decimal has no such type
// without its scale: "".
func portableDDL(t source.Type) string {
	switch t {
	case source.TypeInt:
		return "BIGINT"
	case source.TypeFloat:
		return "DOUBLE"
	case source.TypeBool:
		return "TINYINT(1)"
	case source.TypeDate:
		return "DATE"
	case source.TypeDateTime:
		return "DATETIME(6)"
	case source.TypeString:
		return "LONGTEXT CHARACTER SET utf8mb4"
	case source.TypeBytes:
		return "LONGBLOB"
	}
	return ""
}

// mysqlColumnDDL is the exact MySQL type of a column a MySQL/MariaDB source
// described; "" when the description is not enough (the caller falls back to
// portableDDL, or refuses a decimal). A column whose type the definition overrode
// (columns:) gets the override's portable type.
func mysqlColumnDDL(c source.Column, d source.ColumnDetail) string {
	name := strings.ToUpper(strings.TrimSpace(d.DBType))
	unsigned := strings.HasPrefix(name, "UNSIGNED ")
	name = strings.TrimPrefix(name, "UNSIGNED ")
	if t, ok := source.ColumnType(source.DialectMySQL, name); !ok || t != c.Type {
		return ""
	}
	switch name {
	case "TINYINT", "SMALLINT", "MEDIUMINT", "INT", "BIGINT":
		if unsigned {
			return name + " UNSIGNED"
		}
		return name
	case "YEAR", "DATE", "FLOAT", "DOUBLE":
		return name
	case "DECIMAL":
		if d.HasPrecision && d.Precision > 0 {
			return fmt.Sprintf("DECIMAL(%d,%d)", d.Precision, d.Scale)
		}
	case "DATETIME", "TIMESTAMP", "TIME":
		if name == "TIMESTAMP" {
			name = "DATETIME" // loaded as UTC text: no session time zone in between
		}
		if d.HasPrecision && d.Scale > 0 && d.Scale <= 6 {
			return fmt.Sprintf("%s(%d)", name, d.Scale)
		}
		if d.HasPrecision {
			return name
		}
	case "VARCHAR", "CHAR":
		// The driver's length is in bytes of the connection's character set,
		// utf8mb4: four per character.
		if d.HasLength && d.Length > 0 && d.Length%4 == 0 {
			return fmt.Sprintf("%s(%d) CHARACTER SET utf8mb4", name, d.Length/4)
		}
	case "TINYTEXT", "TEXT", "MEDIUMTEXT", "LONGTEXT":
		return name + " CHARACTER SET utf8mb4"
	case "TINYBLOB", "BLOB", "MEDIUMBLOB", "LONGBLOB":
		return name
	case "VARBINARY", "BINARY":
		if d.HasLength && d.Length > 0 {
			return fmt.Sprintf("%s(%d)", name, d.Length)
		}
	case "JSON":
		return "LONGTEXT CHARACTER SET utf8mb4"
	}
	return ""
}

// sourceColumnTypes is the COLUMN_TYPE of each column of a table: extract's source
// table (MySQL/MariaDB): what the driver's result metadata does not say (a VARCHAR's
// length).
func sourceColumnTypes(ctx context.Context, src source.Source, table string) (map[string]string, error) {
	schema, name, ok := strings.Cut(table, ".")
	q := "SELECT column_name, column_type FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = :t"
	params := map[string]any{"t": schema}
	if ok {
		q = "SELECT column_name, column_type FROM information_schema.columns WHERE table_schema = :s AND table_name = :t"
		params = map[string]any{"s": schema, "t": name}
	}
	rows, err := src.Query(ctx, q, params)
	if err != nil {
		return nil, fmt.Errorf("read the column types of source table %s: %w", table, err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		v := rows.Values()
		n, _ := v[0].(string)
		t, _ := v[1].(string)
		out[strings.ToLower(n)] = t
	}
	return out, rows.Err()
}

// mysqlDeclaredDDL is the target type of a source column declared as columnType
// (information_schema's COLUMN_TYPE): the same type, text in utf8mb4, a TIMESTAMP as
// DATETIME; "" when the definition overrode the column's type.
func mysqlDeclaredDDL(c source.Column, columnType string) string {
	ct := strings.ToUpper(strings.TrimSpace(columnType))
	base := ct
	if i := strings.IndexAny(base, "( "); i >= 0 {
		base = base[:i]
	}
	if t, ok := source.ColumnType(source.DialectMySQL, base); !ok || t != c.Type {
		return ""
	}
	ct = intWidthUpperRE().ReplaceAllString(ct, "$1")
	switch base {
	case "TIMESTAMP":
		return "DATETIME" + strings.TrimPrefix(ct, "TIMESTAMP")
	case "CHAR", "VARCHAR", "TINYTEXT", "TEXT", "MEDIUMTEXT", "LONGTEXT", "ENUM", "SET":
		return ct + " CHARACTER SET utf8mb4"
	case "JSON":
		return "LONGTEXT CHARACTER SET utf8mb4"
	}
	return ct
}

var intWidthUpperRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(TINYINT|SMALLINT|MEDIUMINT|INT|BIGINT)\(\d+\)`) })

var intWidthRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(tinyint|smallint|mediumint|int|bigint)\(\d+\)`) })

// normType is a column type as information_schema's COLUMN_TYPE writes it, for
// comparing: lower case, no integer display width, no utf8mb4 character set clause.
func normType(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.ReplaceAll(s, " character set utf8mb4", "")
	s = intWidthRE().ReplaceAllString(s, "$1")
	return s
}

// tableColumnTypes is a table's columns (lower case) and their COLUMN_TYPE.
func tableColumnTypes(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, table string) (map[string]string, error) {
	rows, err := q.QueryContext(ctx, "SELECT column_name, column_type FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ?", table)
	if err != nil {
		return nil, fmt.Errorf("read columns of %s: %w", table, err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var n, t string
		if err := rows.Scan(&n, &t); err != nil {
			return nil, err
		}
		out[strings.ToLower(n)] = t
	}
	return out, rows.Err()
}
