package source

import (
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ColumnType maps a driver's database type name (sql.ColumnType.DatabaseTypeName)
// to a portable Type. ok is false when the name says nothing (SQLite expressions
// have no declared type), and the caller infers the type from the values.
func ColumnType(driver, dbType string) (t Type, ok bool) {
	name := strings.ToUpper(strings.TrimSpace(dbType))
	if i := strings.IndexByte(name, '('); i >= 0 {
		name = strings.TrimSpace(name[:i])
	}
	switch driver {
	case DialectMySQL:
		return mysqlType(name)
	case DialectSQLServer:
		return sqlserverType(name)
	case DialectSQLite:
		return sqliteType(name)
	}
	return "", false
}

// mysqlType maps go-sql-driver/mysql's names. Unsigned BIGINT stays int; a value
// above MaxInt64 is reported as an error rather than silently wrapped.
func mysqlType(name string) (Type, bool) {
	name = strings.TrimPrefix(name, "UNSIGNED ")
	switch name {
	case "TINYINT", "SMALLINT", "MEDIUMINT", "INT", "INTEGER", "BIGINT", "YEAR":
		return TypeInt, true
	case "DECIMAL", "NEWDECIMAL", "NUMERIC":
		return TypeDecimal, true
	case "FLOAT", "DOUBLE", "REAL":
		return TypeFloat, true
	case "DATE", "NEWDATE":
		return TypeDate, true
	case "DATETIME", "TIMESTAMP":
		return TypeDateTime, true
	case "BLOB", "TINYBLOB", "MEDIUMBLOB", "LONGBLOB", "BINARY", "VARBINARY", "BIT", "GEOMETRY", "VECTOR":
		return TypeBytes, true
	case "":
		return "", false
	}
	// VARCHAR, CHAR, TEXT kinds, ENUM, SET, JSON, TIME, NULL: text is the honest carrier.
	return TypeString, true
}

func sqlserverType(name string) (Type, bool) {
	switch name {
	case "TINYINT", "SMALLINT", "INT", "BIGINT":
		return TypeInt, true
	case "DECIMAL", "NUMERIC", "MONEY", "SMALLMONEY":
		return TypeDecimal, true
	case "FLOAT", "REAL":
		return TypeFloat, true
	case "BIT":
		return TypeBool, true
	case "DATE":
		return TypeDate, true
	case "DATETIME", "DATETIME2", "SMALLDATETIME", "DATETIMEOFFSET":
		return TypeDateTime, true
	case "BINARY", "VARBINARY", "IMAGE", "TIMESTAMP", "ROWVERSION":
		return TypeBytes, true
	case "":
		return "", false
	}
	// CHAR/VARCHAR/NCHAR/NVARCHAR/TEXT/NTEXT, UNIQUEIDENTIFIER, TIME, XML.
	return TypeString, true
}

// sqliteType follows SQLite's own affinity rules (https://sqlite.org/datatype3.html
// section 3.1) with rpt's names for dates, booleans and decimals first, because
// "DATETIME" would otherwise match nothing and "DECIMAL" would be NUMERIC.
func sqliteType(name string) (Type, bool) {
	switch {
	case name == "":
		return "", false
	case strings.Contains(name, "BOOL"):
		return TypeBool, true
	case strings.Contains(name, "DATETIME"), strings.Contains(name, "TIMESTAMP"):
		return TypeDateTime, true
	case name == "DATE":
		return TypeDate, true
	case strings.Contains(name, "INT"):
		return TypeInt, true
	case strings.Contains(name, "DEC"), strings.Contains(name, "NUMERIC"), strings.Contains(name, "MONEY"):
		return TypeDecimal, true
	case strings.Contains(name, "CHAR"), strings.Contains(name, "CLOB"), strings.Contains(name, "TEXT"):
		return TypeString, true
	case strings.Contains(name, "BLOB"):
		return TypeBytes, true
	case strings.Contains(name, "REAL"), strings.Contains(name, "FLOA"), strings.Contains(name, "DOUB"):
		return TypeFloat, true
	}
	return "", false
}

// inferType is the type of a column without a declared type, from a value the
// driver returned.
func inferType(v any) (Type, bool) {
	switch v.(type) {
	case int64, int32, int, uint64:
		return TypeInt, true
	case float64, float32:
		return TypeFloat, true
	case string:
		return TypeString, true
	case []byte:
		return TypeBytes, true
	case bool:
		return TypeBool, true
	case time.Time:
		return TypeDateTime, true
	}
	return "", false
}

// convertValue turns what a driver returned for a column of type t into the
// carrier Type documents. Decimals arrive as text from MySQL and SQL Server and
// are kept as that text; nothing goes through float64 unless the source
// already stored a float (SQLite REAL in a DECIMAL column).
func convertValue(t Type, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch t {
	case TypeInt:
		switch x := v.(type) {
		case int64:
			return x, nil
		case int32:
			return int64(x), nil
		case int:
			return int64(x), nil
		case uint64:
			if x > math.MaxInt64 {
				return nil, fmt.Errorf("integer %d overflows int64", x)
			}
			return int64(x), nil
		case []byte:
			return strconv.ParseInt(string(x), 10, 64)
		case string:
			return strconv.ParseInt(x, 10, 64)
		case bool:
			if x {
				return int64(1), nil
			}
			return int64(0), nil
		case float64:
			if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
				return int64(x), nil
			}
		}
	case TypeDecimal:
		switch x := v.(type) {
		case []byte:
			return string(x), nil
		case string:
			return x, nil
		case int64:
			return strconv.FormatInt(x, 10), nil
		case float64:
			return strconv.FormatFloat(x, 'f', -1, 64), nil
		case float32:
			return strconv.FormatFloat(float64(x), 'f', -1, 32), nil
		}
	case TypeFloat:
		switch x := v.(type) {
		case float64:
			return x, nil
		case float32:
			return float64(x), nil
		case int64:
			return float64(x), nil
		case []byte:
			return strconv.ParseFloat(string(x), 64)
		case string:
			return strconv.ParseFloat(x, 64)
		}
	case TypeString:
		switch x := v.(type) {
		case string:
			return x, nil
		case []byte:
			return string(x), nil
		case int64:
			return strconv.FormatInt(x, 10), nil
		case float64:
			return strconv.FormatFloat(x, 'g', -1, 64), nil
		case bool:
			return strconv.FormatBool(x), nil
		case time.Time:
			// TIME columns (MySQL without parseTime, SQL Server time) and dates typed as text.
			if x.Year() <= 1 && x.YearDay() == 1 {
				return x.Format("15:04:05.999999999"), nil
			}
			return x.UTC().Format(time.RFC3339Nano), nil
		}
	case TypeBool:
		switch x := v.(type) {
		case bool:
			return x, nil
		case int64:
			return x != 0, nil
		case []byte:
			if len(x) == 1 && (x[0] == 0 || x[0] == 1) { // MySQL BIT(1)
				return x[0] == 1, nil
			}
			return strconv.ParseBool(string(x))
		case string:
			return strconv.ParseBool(x)
		}
	case TypeDate:
		switch x := v.(type) {
		case time.Time:
			return x.Format(time.DateOnly), nil
		case []byte:
			return parseDate(string(x))
		case string:
			return parseDate(x)
		}
	case TypeDateTime:
		switch x := v.(type) {
		case time.Time:
			return x.UTC().Format(time.RFC3339Nano), nil
		case []byte:
			return parseDateTime(string(x))
		case string:
			return parseDateTime(x)
		case int64:
			return time.Unix(x, 0).UTC().Format(time.RFC3339Nano), nil
		}
	case TypeBytes:
		switch x := v.(type) {
		case []byte:
			return append([]byte(nil), x...), nil
		case string:
			return []byte(x), nil
		}
	}
	return nil, fmt.Errorf("cannot carry %T value as %s", v, t)
}

func parseDate(s string) (any, error) {
	if len(s) >= 10 {
		if _, err := time.Parse(time.DateOnly, s[:10]); err == nil {
			return s[:10], nil
		}
	}
	return nil, fmt.Errorf("%q is not a date (YYYY-MM-DD)", s)
}

var dateTimeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04",
	time.DateOnly,
}

// parseDateTime reads the text forms SQLite and MySQL text protocol use; a time
// without a zone is UTC, because queue and warehouse times are stored in UTC.
func parseDateTime(s string) (any, error) {
	for _, l := range dateTimeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC().Format(time.RFC3339Nano), nil
		}
	}
	return nil, fmt.Errorf("%q is not a date-time", s)
}

// guidString formats a SQL Server uniqueidentifier, whose first three groups
// go-mssqldb returns little-endian.
func guidString(b []byte) string {
	g := []byte{b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6]}
	g = append(g, b[8:]...)
	h := hex.EncodeToString(g)
	return strings.ToUpper(h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:])
}
