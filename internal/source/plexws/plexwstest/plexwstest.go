// Package plexwstest is a stand-in for Plex's data-source web service in tests: an
// HTTPS server (httptest) at the endpoint's path that checks the SOAPAction, the
// envelope and each PCN's Basic credentials as Plex would, and answers in Plex's
// envelope (ExecuteDataSourceResponse/ExecuteDataSourceResult/ResultSets/ResultSet/
// Rows/Row/Columns/Column/{Value,Name}). What it answers is up to the test's Handler.
package plexwstest

import (
	"bufio"
	"encoding/pem"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
)

// The contract the server checks (the same constants as package plexws; repeated so
// that a change on one side fails the tests).
const (
	Path       = "/DataSource/Service.asmx"
	Namespace  = "http://www.plexus-online.com/DataSource"
	SOAPAction = Namespace + "/ExecuteDataSource"
)

// Account is a web-service user the server accepts, for one PCN.
type Account struct {
	User, Password string
	PCN            int
}

// Call is one request as the server read it.
type Call struct {
	N      int // 1-based, in arrival order
	PCN    int // the PCN of the account that called
	User   string
	Key    int
	Name   string
	Inputs map[string]string
}

// Handler answers one authenticated, well-formed call.
type Handler func(w http.ResponseWriter, r *http.Request, c Call)

// Server is the stand-in. URL is the endpoint to configure; CAFile a PEM file with its
// certificate (ca_file:).
type Server struct {
	URL    string
	CAFile string
	srv    *httptest.Server

	mu       sync.Mutex
	accounts map[string]Account
	handler  Handler
	calls    []Call
	requests int // every request, refused ones included
}

// New starts a server accepting accounts and answering with h; it stops at the end of
// the test.
func New(t testing.TB, h Handler, accounts ...Account) *Server {
	t.Helper()
	s := &Server{accounts: map[string]Account{}, handler: h}
	for _, a := range accounts {
		s.accounts[a.User] = a
	}
	s.srv = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	s.URL = s.srv.URL + Path
	s.CAFile = filepath.Join(t.TempDir(), "plex-ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
	if err := os.WriteFile(s.CAFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

// SetHandler replaces the handler.
func (s *Server) SetHandler(h Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handler = h
}

// Calls are the authenticated calls so far.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// Requests counts every request, refused ones included.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// request is the envelope as plexws sends it.
type request struct {
	Body struct {
		Execute struct {
			Request struct {
				Key    string `xml:"DataSourceKey"`
				Name   string `xml:"DataSourceName"`
				Inputs []struct {
					Name  string `xml:"Name"`
					Value string `xml:"Value"`
				} `xml:"InputParameters>InputParameter"`
			} `xml:"http://www.plexus-online.com/DataSource ExecuteDataSourceRequest"`
		} `xml:"http://www.plexus-online.com/DataSource ExecuteDataSource"`
	} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Body"`
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	s.mu.Unlock()
	if r.URL.Path != Path {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost || r.Header.Get("SOAPAction") != SOAPAction {
		WriteFault(w, "soap:Client", fmt.Sprintf("Server did not recognize the value of HTTP Header SOAPAction: %s.", r.Header.Get("SOAPAction")))
		return
	}
	user, pw, ok := r.BasicAuth()
	s.mu.Lock()
	acct, known := s.accounts[user]
	s.mu.Unlock()
	if !ok || !known || acct.Password != pw {
		w.Header().Set("WWW-Authenticate", `Basic realm="api.plexonline.com"`)
		http.Error(w, "401 - Unauthorized: Access is denied due to invalid credentials.", http.StatusUnauthorized)
		return
	}
	var req request
	if err := xml.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		WriteFault(w, "soap:Client", "Server was unable to read request. "+err.Error())
		return
	}
	rq := req.Body.Execute.Request
	key, err := strconv.Atoi(rq.Key)
	if err != nil {
		WriteFault(w, "soap:Client", "Server was unable to read request: DataSourceKey "+rq.Key)
		return
	}
	c := Call{PCN: acct.PCN, User: user, Key: key, Name: rq.Name, Inputs: map[string]string{}}
	for _, in := range rq.Inputs {
		c.Inputs[in.Name] = in.Value
	}
	s.mu.Lock()
	c.N = len(s.calls) + 1
	s.calls = append(s.calls, c)
	h := s.handler
	s.mu.Unlock()
	h(w, r, c)
}

// WriteFault answers with a SOAP 1.1 fault (HTTP 500), as ASMX services do.
func WriteFault(w http.ResponseWriter, code, msg string) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault><faultcode>%s</faultcode><faultstring>%s</faultstring><detail/></soap:Fault></soap:Body></soap:Envelope>`,
		esc(code), esc(msg))
}

// WriteError answers 200 with Error true, an error number and a message, and no rows.
func WriteError(w http.ResponseWriter, c Call, errNo int, msg string) {
	a := Begin(w, c, Status{Error: true, ErrorNo: errNo, Message: msg})
	a.End()
}

// Status is the head of a result.
type Status struct {
	Error   bool
	ErrorNo int
	Message string
}

// Answer writes a 200 answer row by row, flushing as it goes, so a large answer
// streams.
type Answer struct {
	w     *bufio.Writer
	f     http.Flusher
	n     int
	ended bool
}

// Begin writes the head of a 200 answer: the envelope, the result's status, and the
// opening of its one result set.
func Begin(w http.ResponseWriter, c Call, st Status) *Answer {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	a := &Answer{w: bufio.NewWriterSize(w, 32<<10)}
	a.f, _ = w.(http.Flusher)
	fmt.Fprintf(a.w, `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema"><soap:Body>`+
		`<ExecuteDataSourceResponse xmlns="%s"><ExecuteDataSourceResult><DataSourceKey>%d</DataSourceKey><DataSourceName>%s</DataSourceName>`+
		`<Error>%t</Error><ErrorNo>%d</ErrorNo><InstanceNo>1</InstanceNo><Message>%s</Message><OutputParameters/><ResultSets><ResultSet><Rows>`,
		Namespace, c.Key, esc(c.Name), st.Error, st.ErrorNo, esc(st.Message))
	return a
}

// Row writes one row: names[i] and values[i] per column; a nil value is written
// xsi:nil.
func (a *Answer) Row(names []string, values []*string) error {
	a.w.WriteString("<Row><Columns>")
	for i, n := range names {
		if values[i] == nil {
			a.w.WriteString(`<Column><Value xsi:nil="true"/><Name>` + esc(n) + `</Name></Column>`)
			continue
		}
		a.w.WriteString("<Column><Value>" + esc(*values[i]) + "</Value><Name>" + esc(n) + "</Name></Column>")
	}
	_, err := a.w.WriteString("</Columns></Row>")
	a.n++
	if a.n%256 == 0 {
		err = a.Flush()
	}
	return err
}

// Strings is Row with every value given.
func (a *Answer) Strings(names []string, values ...string) error {
	p := make([]*string, len(values))
	for i := range values {
		p[i] = &values[i]
	}
	return a.Row(names, p)
}

// Flush sends what is buffered.
func (a *Answer) Flush() error {
	err := a.w.Flush()
	if a.f != nil && err == nil {
		a.f.Flush()
	}
	return err
}

// End closes the result set and the envelope.
func (a *Answer) End() {
	if a.ended {
		return
	}
	a.ended = true
	fmt.Fprintf(a.w, `</Rows><RowCount>%d</RowCount></ResultSet></ResultSets><TransactionNo>0</TransactionNo></ExecuteDataSourceResult></ExecuteDataSourceResponse></soap:Body></soap:Envelope>`, a.n)
	_ = a.Flush()
}

func esc(s string) string {
	var b []byte
	w := &byteWriter{b: b}
	_ = xml.EscapeText(w, []byte(s))
	return string(w.b)
}

type byteWriter struct{ b []byte }

func (w *byteWriter) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }
