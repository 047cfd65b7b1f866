package source

import (
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

func TestColumnType(t *testing.T) {
	t.Parallel()
	tests := []struct {
		driver, dbType string
		want           Type
		wantOK         bool
	}{
		{"mysql", "DECIMAL", TypeDecimal, true},
		{"mysql", "INT", TypeInt, true},
		{"mysql", "UNSIGNED BIGINT", TypeInt, true},
		{"mysql", "TINYINT", TypeInt, true},
		{"mysql", "DATE", TypeDate, true},
		{"mysql", "DATETIME", TypeDateTime, true},
		{"mysql", "TIMESTAMP", TypeDateTime, true},
		{"mysql", "VARCHAR", TypeString, true},
		{"mysql", "TEXT", TypeString, true},
		{"mysql", "CHAR", TypeString, true},
		{"mysql", "ENUM", TypeString, true},
		{"mysql", "JSON", TypeString, true},
		{"mysql", "FLOAT", TypeFloat, true},
		{"mysql", "DOUBLE", TypeFloat, true},
		{"mysql", "BLOB", TypeBytes, true},
		{"mysql", "VARBINARY", TypeBytes, true},
		{"mysql", "", "", false},
		{"sqlserver", "DECIMAL", TypeDecimal, true},
		{"sqlserver", "MONEY", TypeDecimal, true},
		{"sqlserver", "SMALLMONEY", TypeDecimal, true},
		{"sqlserver", "BIT", TypeBool, true},
		{"sqlserver", "DATE", TypeDate, true},
		{"sqlserver", "DATETIME2", TypeDateTime, true},
		{"sqlserver", "DATETIMEOFFSET", TypeDateTime, true},
		{"sqlserver", "BIGINT", TypeInt, true},
		{"sqlserver", "NVARCHAR", TypeString, true},
		{"sqlserver", "UNIQUEIDENTIFIER", TypeString, true},
		{"sqlserver", "FLOAT", TypeFloat, true},
		{"sqlserver", "VARBINARY", TypeBytes, true},
		{"sqlite", "INTEGER", TypeInt, true},
		{"sqlite", "BIGINT", TypeInt, true},
		{"sqlite", "decimal(19,2)", TypeDecimal, true},
		{"sqlite", "NUMERIC", TypeDecimal, true},
		{"sqlite", "VARCHAR(20)", TypeString, true},
		{"sqlite", "TEXT", TypeString, true},
		{"sqlite", "REAL", TypeFloat, true},
		{"sqlite", "DOUBLE PRECISION", TypeFloat, true},
		{"sqlite", "BLOB", TypeBytes, true},
		{"sqlite", "DATE", TypeDate, true},
		{"sqlite", "DATETIME", TypeDateTime, true},
		{"sqlite", "TIMESTAMP", TypeDateTime, true},
		{"sqlite", "BOOLEAN", TypeBool, true},
		{"sqlite", "", "", false},
		{"sqlite", "WHATEVER", "", false},
		{"oracle", "NUMBER", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.driver+"/"+tt.dbType, func(t *testing.T) {
			t.Parallel()
			got, ok := ColumnType(tt.driver, tt.dbType)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("ColumnType(%q, %q) = %q, %v; want %q, %v", tt.driver, tt.dbType, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestConvertValue(t *testing.T) {
	t.Parallel()
	at := time.Date(2024, 3, 31, 23, 59, 58, 123456000, time.FixedZone("EST", -5*3600))
	tests := []struct {
		name string
		typ  Type
		in   any
		want any
	}{
		{"null", TypeDecimal, nil, nil},
		{"decimal text stays exact", TypeDecimal, []byte("12345678901234567.89"), "12345678901234567.89"},
		{"decimal negative", TypeDecimal, []byte("-0.10"), "-0.10"},
		{"decimal from sqlite int", TypeDecimal, int64(1234), "1234"},
		{"decimal from sqlite real", TypeDecimal, 12345.67, "12345.67"},
		{"int", TypeInt, int64(-7), int64(-7)},
		{"int from text protocol", TypeInt, []byte("42"), int64(42)},
		{"int from unsigned", TypeInt, uint64(9), int64(9)},
		{"float", TypeFloat, 1.5, 1.5},
		{"float32", TypeFloat, float32(0.5), 0.5},
		{"string from bytes", TypeString, []byte("abc"), "abc"},
		{"bool from bit", TypeBool, []byte{1}, true},
		{"bool from int", TypeBool, int64(0), false},
		{"date from time", TypeDate, time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), "2024-02-29"},
		{"date from text", TypeDate, "2024-02-29", "2024-02-29"},
		{"datetime is utc", TypeDateTime, at, "2024-04-01T04:59:58.123456Z"},
		{"datetime from sqlite text", TypeDateTime, "2024-01-02 03:04:05", "2024-01-02T03:04:05Z"},
		{"bytes copied", TypeBytes, []byte{0, 1}, []byte{0, 1}},
		// The cases where the driver path and the columns: override path used to differ.
		{"int from padded text", TypeInt, " 42 ", int64(42)},
		{"decimal from padded bytes", TypeDecimal, []byte(" 12.50"), "12.50"},
		{"float as text is not exponent form", TypeFloat, "1e21", 1e21},
		{"string from float", TypeString, 1e21, "1000000000000000000000"},
		{"string from time of day", TypeString, time.Date(0, 1, 1, 7, 30, 0, 0, time.UTC), "07:30:00"},
		{"date from datetime text", TypeDate, "2024-02-29 10:00:00", "2024-02-29"},
		{"datetime from unix seconds", TypeDateTime, int64(86400), "1970-01-02T00:00:00Z"},
		{"datetime from bytes", TypeDateTime, []byte("2024-01-02T03:04:05Z"), "2024-01-02T03:04:05Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Convert(tt.typ, tt.in)
			if err != nil {
				t.Fatalf("Convert(%s, %#v): %v", tt.typ, tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Convert(%s, %#v) = %#v, want %#v", tt.typ, tt.in, got, tt.want)
			}
		})
	}
}

func TestConvertValueErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		typ Type
		in  any
	}{
		{TypeInt, "twelve"},
		{TypeInt, uint64(1 << 63)},
		{TypeInt, 1.5},
		{TypeDate, "31/12/2024"},
		{TypeDateTime, "yesterday"},
		{TypeDecimal, true},
		{TypeDecimal, "n/a"},
		{TypeDecimal, []byte("1,5")},
		{TypeBool, int64(2)},
		{TypeDate, "2024-02-29junk"},
		{TypeBytes, int64(1)},
		{Type("money"), "1"},
	}
	for _, tt := range tests {
		if got, err := Convert(tt.typ, tt.in); err == nil {
			t.Errorf("Convert(%s, %#v) = %#v, want an error", tt.typ, tt.in, got)
		}
	}
}

func TestGUIDString(t *testing.T) {
	t.Parallel()
	// 6F9619FF-8B86-D011-B42D-00C04FC964FF as SQL Server sends it.
	b := []byte{0xFF, 0x19, 0x96, 0x6F, 0x86, 0x8B, 0x11, 0xD0, 0xB4, 0x2D, 0x00, 0xC0, 0x4F, 0xC9, 0x64, 0xFF}
	if got, want := guidString(b), "6F9619FF-8B86-D011-B42D-00C04FC964FF"; got != want {
		t.Errorf("guidString = %s, want %s", got, want)
	}
}

// A server that went away mid-statement is ErrUnavailable (the job retries or fails per
// its max_attempts) with words a user understands; an error the server sent is not.
func TestConnLost(t *testing.T) {
	lost := []error{
		mysql.ErrInvalidConn,
		driver.ErrBadConn,
		io.ErrUnexpectedEOF,
		fmt.Errorf("read: %w", &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}),
	}
	for _, err := range lost {
		got := connLost(err)
		if !errors.Is(got, ErrUnavailable) || !strings.Contains(got.Error(), "lost the connection to the server") || !errors.Is(got, err) {
			t.Errorf("connLost(%v) = %v, want ErrUnavailable saying the connection was lost, wrapping the cause", err, got)
		}
	}
	for _, err := range []error{&mysql.MySQLError{Number: 1146, Message: "Table 'x' doesn't exist"}, errors.New("division by zero")} {
		if got := connLost(err); got != err {
			t.Errorf("connLost(%v) = %v, want it unchanged", err, got)
		}
	}
}
