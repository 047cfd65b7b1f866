package cli

import (
	"strings"
	"unicode/utf8"
)

// checkParamText refuses a -p/--param value that is not UTF-8 text, naming the
// parameter. It runs on the raw arguments because urfave/cli copies a flag given by
// its alias (-p) to its other name through JSON, which replaces such bytes with U+FFFD
// without a word: a different value would be queried. reportdefs.Resolve refuses them
// too, for callers that are not the command line.
func checkParamText(args []string) error {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return nil
		}
		var value string
		switch {
		case a == "-p" || a == "--param" || a == "-param":
			if i+1 >= len(args) {
				return nil
			}
			i++
			value = args[i]
		case strings.HasPrefix(a, "-p=") || strings.HasPrefix(a, "--param=") || strings.HasPrefix(a, "-param="):
			_, value, _ = strings.Cut(a, "=")
		default:
			continue
		}
		if utf8.ValidString(value) {
			continue
		}
		name, val, _ := strings.Cut(value, "=")
		what, text := "value", val
		if !utf8.ValidString(name) {
			what, text = "name", name
		}
		for j := 0; j < len(text); {
			r, n := utf8.DecodeRuneInString(text[j:])
			if r == utf8.RuneError && n <= 1 {
				return usagef("-p %.60q: the %s is not UTF-8 text (byte 0x%02x at offset %d); give parameters in UTF-8", name, what, text[j], j)
			}
			j += n
		}
	}
	return nil
}
