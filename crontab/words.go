package crontab

import (
	"errors"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

type wordsError struct {
	col int
	msg string
}

// parseWords parses Command as /bin/sh would (POSIX shell) and keeps each simple
// command's words with their columns on the crontab line, so lint can point into an
// rpt line. A command sh cannot parse is an error at its column.
func (e *Entry) parseWords() *wordsError {
	f, err := syntax.NewParser(syntax.Variant(syntax.LangPOSIX)).Parse(strings.NewReader(e.Command), "")
	if err != nil {
		var pe syntax.ParseError
		if errors.As(err, &pe) {
			return &wordsError{col: e.ColAt(int(pe.Pos.Offset())), msg: "/bin/sh cannot parse it: " + pe.Text}
		}
		return &wordsError{col: e.CommandCol, msg: "/bin/sh cannot parse it: " + err.Error()}
	}
	syntax.Walk(f, func(n syntax.Node) bool {
		call, ok := n.(*syntax.CallExpr)
		if !ok {
			return true
		}
		var words, assigns []Word
		for _, a := range call.Assigns {
			w := Word{Raw: e.Command[a.Pos().Offset():a.End().Offset()], Col: e.ColAt(int(a.Pos().Offset())), Literal: true}
			if a.Name != nil {
				w.Text = a.Name.Value + "="
			}
			if a.Value != nil {
				v, lit := wordText(a.Value)
				w.Text += v
				w.Literal = lit
			}
			if !w.Literal {
				w.Text = ""
			}
			assigns = append(assigns, w)
		}
		for _, a := range call.Args {
			text, lit := wordText(a)
			if !lit {
				text = ""
			}
			words = append(words, Word{Text: text, Raw: e.Command[a.Pos().Offset():a.End().Offset()], Col: e.ColAt(int(a.Pos().Offset())), Literal: lit})
		}
		e.Words = append(e.Words, words)
		e.Assigns = append(e.Assigns, assigns)
		return true
	})
	return nil
}

// wordText is a word's value after quote removal, and whether it has no expansions.
func wordText(w *syntax.Word) (string, bool) {
	var b strings.Builder
	lit := true
	for _, part := range w.Parts {
		switch p := part.(type) {
		case *syntax.Lit:
			v := p.Value
			if strings.ContainsAny(v, "*?[") {
				lit = false
			}
			b.WriteString(unescape(v, ""))
		case *syntax.SglQuoted:
			if p.Dollar {
				lit = false
			}
			b.WriteString(p.Value)
		case *syntax.DblQuoted:
			for _, q := range p.Parts {
				l, ok := q.(*syntax.Lit)
				if !ok {
					lit = false
					continue
				}
				b.WriteString(unescape(l.Value, "$`\"\\\n"))
			}
		default:
			lit = false
		}
	}
	return b.String(), lit
}

// unescape removes the backslashes sh removes: before any byte outside quotes (only),
// or before one of only inside double quotes.
func unescape(s, only string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && (only == "" || strings.IndexByte(only, s[i+1]) >= 0) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
