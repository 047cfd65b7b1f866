package source

import (
	"encoding/hex"
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

// guidString formats a SQL Server uniqueidentifier, whose first three groups
// go-mssqldb returns little-endian.
func guidString(b []byte) string {
	g := []byte{b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6]}
	g = append(g, b[8:]...)
	h := hex.EncodeToString(g)
	return strings.ToUpper(h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:])
}
