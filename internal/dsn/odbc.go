package dsn

import (
	"fmt"
	"strings"
)

// ODBCAttr is one KEY=VALUE of an ODBC connection string.
type ODBCAttr struct {
	Key   string // as written, trimmed
	Value string // braces removed, "}}" read as "}"
}

// ODBC parses an ODBC connection string, "DSN=Plex;UID=rpt;PWD={p;w}" or
// "Driver={MariaDB Unicode};Server=db;Database=plex": KEY=VALUE pairs separated by ';',
// a value in braces may hold ';' and '=' ("}}" inside braces is one '}'). It must name
// where to connect: DSN, FILEDSN or DRIVER. An error names the attribute, never a value
// (a value may be a password).
func ODBC(s string) ([]ODBCAttr, error) {
	var attrs []ODBCAttr
	seen := map[string]bool{}
	n := 0 // attribute number, for messages
	for i := 0; i < len(s); {
		// Key: up to '='.
		for i < len(s) && (s[i] == ' ' || s[i] == ';') {
			i++
		}
		if i >= len(s) {
			break
		}
		n++
		eq := strings.IndexByte(s[i:], '=')
		semi := strings.IndexByte(s[i:], ';')
		if eq < 0 || (semi >= 0 && semi < eq) {
			return nil, fmt.Errorf("%w: ODBC connection string: attribute %d has no '=' (want KEY=VALUE;KEY=VALUE)", ErrInvalid, n)
		}
		key := strings.TrimSpace(s[i : i+eq])
		if key == "" || strings.ContainsAny(key, "{}[](),?*!@") {
			return nil, fmt.Errorf("%w: ODBC connection string: attribute %d has a bad key (want letters, digits, spaces, '_' and '-')", ErrInvalid, n)
		}
		up := strings.ToUpper(key)
		if seen[up] {
			return nil, fmt.Errorf("%w: ODBC connection string: %s is given twice", ErrInvalid, key)
		}
		seen[up] = true
		i += eq + 1
		for i < len(s) && s[i] == ' ' {
			i++
		}
		var val strings.Builder
		if i < len(s) && s[i] == '{' {
			i++
			closed := false
			for i < len(s) {
				if s[i] == '}' {
					if i+1 < len(s) && s[i+1] == '}' {
						val.WriteByte('}')
						i += 2
						continue
					}
					i++
					closed = true
					break
				}
				val.WriteByte(s[i])
				i++
			}
			if !closed {
				return nil, fmt.Errorf("%w: ODBC connection string: the value of %s opens '{' and never closes it (write }} for a '}' inside braces)", ErrInvalid, key)
			}
			for i < len(s) && s[i] == ' ' {
				i++
			}
			if i < len(s) && s[i] != ';' {
				return nil, fmt.Errorf("%w: ODBC connection string: text after the braced value of %s (want ';' next)", ErrInvalid, key)
			}
		} else {
			end := strings.IndexByte(s[i:], ';')
			if end < 0 {
				end = len(s) - i
			}
			v := strings.TrimSpace(s[i : i+end])
			if strings.ContainsAny(v, "{}") {
				return nil, fmt.Errorf("%w: ODBC connection string: the value of %s holds a brace; put the whole value in braces ({...}, with }} for '}')", ErrInvalid, key)
			}
			val.WriteString(v)
			i += end
		}
		attrs = append(attrs, ODBCAttr{Key: key, Value: val.String()})
	}
	if !seen["DSN"] && !seen["FILEDSN"] && !seen["DRIVER"] {
		return nil, fmt.Errorf("%w: ODBC connection string names no data source: want DSN=NAME (from odbc.ini) or Driver={NAME} (from odbcinst.ini) with Server=...", ErrInvalid)
	}
	return attrs, nil
}

// ODBCValue quotes v for an ODBC connection string: in braces, with '}' doubled, so a
// password holding ';', '=' or braces stays one value.
func ODBCValue(v string) string {
	return "{" + strings.ReplaceAll(v, "}", "}}") + "}"
}
