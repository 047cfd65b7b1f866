package plexws

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// decoder reads an ExecuteDataSource answer token by token: the result's Error,
// ErrorNo and Message, and the rows of the first result set, one at a time, so memory
// stays flat however many rows Plex sends. Elements are matched by local name (Plex
// answers in its own default namespace under soap:Body).
type decoder struct {
	x     *xml.Decoder
	stack []string

	// the current row: names and values by position; null[i] when the Value element
	// was absent or xsi:nil.
	names  []string
	values []string
	null   []bool
	col    int // index of the Column being read, -1 outside one
	hasVal bool

	text    strings.Builder // character data of the element being captured
	capture bool

	errFlag   string // Error: "true"/"false"/""
	errNo     string
	message   string
	fault     string
	inFault   bool
	resultSet int // ResultSet elements started
	done      bool
}

func newDecoder(r io.Reader) *decoder {
	return &decoder{x: xml.NewDecoder(r), col: -1}
}

func (d *decoder) parent() string {
	if len(d.stack) < 2 {
		return ""
	}
	return d.stack[len(d.stack)-2]
}

// next reads up to the end of the next row of the first result set; false at the end
// of the answer (err nil) or on an error, a SOAP fault or a Plex error included.
func (d *decoder) next() (bool, error) {
	if d.done {
		return false, nil
	}
	for {
		tok, err := d.x.RawToken()
		if err == io.EOF {
			d.done = true
			if len(d.stack) > 0 {
				return false, fmt.Errorf("the answer ended inside <%s>: %w", d.stack[len(d.stack)-1], io.ErrUnexpectedEOF)
			}
			return false, d.plexError()
		}
		if err != nil {
			d.done = true
			return false, fmt.Errorf("read the answer: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			name := t.Name.Local
			d.stack = append(d.stack, name)
			d.capture = false
			switch name {
			case "Fault":
				d.inFault = true
			case "ResultSet":
				d.resultSet++
				// An Error that came before the rows stops the call before any row.
				if err := d.plexError(); err != nil {
					d.done = true
					return false, err
				}
			case "Row":
				if d.inFirstSet() {
					d.names, d.values, d.null = d.names[:0], d.values[:0], d.null[:0]
				}
			case "Column":
				if d.inFirstSet() {
					d.col = len(d.values)
					d.names = append(d.names, "")
					d.values = append(d.values, "")
					d.null = append(d.null, true)
					d.hasVal = false
				}
			case "Value", "Name":
				if d.col >= 0 && d.parent() == "Column" {
					d.startText()
					if name == "Value" {
						d.hasVal = true
						d.null[d.col] = nilAttr(t.Attr)
					}
				}
			case "Error", "ErrorNo", "Message":
				if d.parent() == "ExecuteDataSourceResult" {
					d.startText()
				}
			case "faultstring":
				if d.inFault {
					d.startText()
				}
			}
		case xml.CharData:
			if d.capture {
				d.text.Write(t)
			}
		case xml.EndElement:
			name := t.Name.Local
			if len(d.stack) == 0 {
				d.done = true
				return false, fmt.Errorf("read the answer: unexpected </%s>", name)
			}
			d.stack = d.stack[:len(d.stack)-1]
			captured := d.capture
			d.capture = false
			switch name {
			case "Value":
				if captured && d.col >= 0 {
					d.values[d.col] = d.text.String()
				}
			case "Name":
				if captured && d.col >= 0 {
					d.names[d.col] = d.text.String()
				}
			case "Column":
				if d.col >= 0 && !d.hasVal {
					d.null[d.col] = true
				}
				d.col = -1
			case "Row":
				if d.inFirstSet() && len(d.stack) > 0 {
					return true, nil
				}
			case "Error":
				if captured {
					d.errFlag = strings.ToLower(strings.TrimSpace(d.text.String()))
				}
			case "ErrorNo":
				if captured {
					d.errNo = strings.TrimSpace(d.text.String())
				}
			case "Message":
				if captured {
					d.message = strings.TrimSpace(d.text.String())
				}
			case "faultstring":
				if captured {
					d.fault = strings.TrimSpace(d.text.String())
				}
			case "Fault":
				d.done = true
				msg := d.fault
				if msg == "" {
					msg = "(no faultstring)"
				}
				return false, fmt.Errorf("%w: SOAP fault: %s", ErrPlex, msg)
			}
		}
	}
}

func (d *decoder) startText() {
	d.capture = true
	d.text.Reset()
}

// inFirstSet reports whether the decoder is inside the first ResultSet: later result
// sets (a data source that returns several) are read past, not returned.
func (d *decoder) inFirstSet() bool { return d.resultSet == 1 }

// plexError is the error Plex reported in the result, if any: Error true, or an
// ErrorNo other than 0 (or 200, which some data sources use for success) when Error
// does not say false.
func (d *decoder) plexError() error {
	failed := d.errFlag == "true" || d.errFlag == "1"
	if d.errFlag == "" && d.errNo != "" && d.errNo != "0" && d.errNo != "200" {
		failed = true
	}
	if !failed {
		return nil
	}
	msg := d.message
	if msg == "" {
		msg = "(no message)"
	}
	if d.errNo != "" {
		return fmt.Errorf("%w: Plex error %s: %s", ErrPlex, d.errNo, msg)
	}
	return fmt.Errorf("%w: %s", ErrPlex, msg)
}

// nilAttr reports xsi:nil="true".
func nilAttr(attrs []xml.Attr) bool {
	for _, a := range attrs {
		if a.Name.Local == "nil" && (a.Value == "true" || a.Value == "1") {
			return true
		}
	}
	return false
}
