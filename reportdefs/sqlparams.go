package reportdefs

// sqlParam is one ":name" reference in SQL text: Start is the offset of the colon,
// End the offset after the name.
type sqlParam struct {
	Name       string
	Start, End int
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentPart(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }

// sqlParams finds the ":name" references in sql, skipping string literals ('...',
// "..."), backtick identifiers, comments (-- to end of line, /* */) and "::" casts,
// which are never parameters.
func sqlParams(sql string) []sqlParam {
	var out []sqlParam
	n := len(sql)
	for i := 0; i < n; {
		c := sql[i]
		switch {
		case c == '\'' || c == '"' || c == '`':
			i = skipQuoted(sql, i, c)
		case c == '-' && i+1 < n && sql[i+1] == '-':
			for i < n && sql[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < n && sql[i+1] == '*':
			i += 2
			for i < n && !(sql[i] == '*' && i+1 < n && sql[i+1] == '/') {
				i++
			}
			i += 2
		case c == ':' && i+1 < n && sql[i+1] == ':':
			// A cast (x::int): skip both colons and the type name.
			i += 2
			for i < n && isIdentPart(sql[i]) {
				i++
			}
		case c == ':' && i+1 < n && isIdentStart(sql[i+1]) && (i == 0 || !isIdentPart(sql[i-1])):
			j := i + 1
			for j < n && isIdentPart(sql[j]) {
				j++
			}
			out = append(out, sqlParam{Name: sql[i+1 : j], Start: i, End: j})
			i = j
		default:
			i++
		}
	}
	return out
}

// skipQuoted returns the offset after the literal opening at i; a doubled quote is an
// escaped quote (standard SQL; MySQL's backslash escapes are not followed).
func skipQuoted(sql string, i int, q byte) int {
	n := len(sql)
	for i++; i < n; i++ {
		if sql[i] != q {
			continue
		}
		if i+1 < n && sql[i+1] == q {
			i++
			continue
		}
		return i + 1
	}
	return n
}
