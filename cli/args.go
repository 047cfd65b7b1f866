package cli

import (
	"strings"

	ucli "github.com/urfave/cli/v2"
)

// reorderArgs moves flags that follow positional arguments in front of them, so that
// `rpt get 42 --csv` means what `rpt get --csv 42` means: urfave/cli v2 stops parsing
// flags at the first positional argument. It walks the command path to find which
// flags the final command has and which of them take a value; "--" ends flags.
func reorderArgs(app *ucli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	var global, path, cmdFlags, pos []string
	flags := app.Flags
	cmds := app.Commands
	inCommand := false
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if isFlag(a) {
			dst := &cmdFlags
			fl := flags
			// Global flags may come anywhere; they go before the command path.
			if !inCommand || (!hasFlag(flags, a) && hasFlag(app.Flags, a)) {
				dst, fl = &global, app.Flags
			}
			*dst = append(*dst, a)
			if takesValue(fl, a) && i+1 < len(args) {
				*dst = append(*dst, args[i+1])
				i++
			}
			continue
		}
		if len(pos) == 0 {
			if cmd := findCommand(cmds, a); cmd != nil {
				path = append(path, a)
				flags, cmds, inCommand = cmd.Flags, cmd.Subcommands, true
				continue
			}
		}
		pos = append(pos, a)
	}
	if len(path) == 0 {
		return args // no command: let the parser say what is wrong
	}
	out := append([]string{args[0]}, global...)
	out = append(out, path...)
	out = append(out, cmdFlags...)
	if len(pos) > 0 {
		out = append(out, "--")
		out = append(out, pos...)
	}
	return out
}

func isFlag(a string) bool { return len(a) > 1 && a[0] == '-' && a != "-" }

func findCommand(cmds []*ucli.Command, name string) *ucli.Command {
	for _, c := range cmds {
		if c.Name == name {
			return c
		}
		for _, al := range c.Aliases {
			if al == name {
				return c
			}
		}
	}
	return nil
}

func hasFlag(flags []ucli.Flag, a string) bool {
	name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return true
			}
		}
	}
	return false
}

// takesValue reports whether flag a (as written, "-p", "--param", "--x=y") consumes the
// next argument.
func takesValue(flags []ucli.Flag, a string) bool {
	if strings.Contains(a, "=") {
		return false
	}
	name := strings.TrimLeft(a, "-")
	for _, f := range flags {
		for _, n := range f.Names() {
			if n != name {
				continue
			}
			if df, ok := f.(ucli.DocGenerationFlag); ok {
				return df.TakesValue()
			}
			return true
		}
	}
	// Help and unknown flags: let the parser report unknown ones.
	return false
}
