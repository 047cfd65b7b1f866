// Package web is rpt's web app: server-rendered pages (html/template, embedded, with one
// small vanilla JS file for live updates and no build chain) over the same job service
// as the command line and the HTTP API. A user logs in with an API token; the session
// is an HttpOnly, SameSite=Strict cookie holding it, which the API also accepts, so the
// page's live updates (the API's event stream) and downloads go through the API's own
// routes and roles. Every form post is checked by http.CrossOriginProtection. Times
// on pages are in the plant's zone (the configured time zone); the API's stay UTC.
package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"rpt/internal/errclass"
	"rpt/internal/jobs"
	"rpt/internal/queue"
	"rpt/internal/results"
)

// CookieName is the session cookie: the API accepts it in place of a bearer token.
const CookieName = "rpt_session"

// SessionLength is how long a login lasts.
const SessionLength = 12 * time.Hour

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Server serves the web app.
type Server struct {
	// Jobs is the job service (its Store holds the tokens; its Loc is the plant's zone).
	Jobs *jobs.Service
	// OpenResults opens the results store holding job j's result, as rpt get does.
	OpenResults func(ctx context.Context, j *queue.Job) (results.Store, error)
	// Secure marks the session cookie Secure (served over TLS).
	Secure bool
	// Log receives what goes wrong; nil: discarded.
	Log *slog.Logger
	// Schedules, when set, serves the schedules page (the database schedules).
	Schedules Schedules

	pages map[string]*template.Template
}

type ctxKey struct{}

// caller is the logged-in user's token.
func caller(r *http.Request) queue.APIToken {
	t, _ := r.Context().Value(ctxKey{}).(queue.APIToken)
	return t
}

// Handler is the web app's routes, every form post behind cross-origin protection.
func (s *Server) Handler() http.Handler {
	s.parse()
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", staticHandler(http.FileServerFS(static))))
	mux.HandleFunc("GET /login", s.loginPage)
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("POST /logout", s.logout)
	mux.Handle("GET /{$}", s.auth(queue.RoleViewer, s.catalogue))
	mux.Handle("GET /reports/{name}", s.auth(queue.RoleViewer, s.reportForm))
	mux.Handle("POST /reports/{name}", s.auth(queue.RoleSubmitter, s.submit))
	mux.Handle("GET /jobs", s.auth(queue.RoleViewer, s.jobList))
	mux.Handle("GET /jobs/{id}", s.auth(queue.RoleViewer, s.jobPage))
	mux.Handle("GET /jobs/{id}/row", s.auth(queue.RoleViewer, s.jobRow))
	mux.Handle("POST /jobs/{id}/cancel", s.auth(queue.RoleSubmitter, s.cancel))
	mux.Handle("POST /jobs/{id}/retry", s.auth(queue.RoleSubmitter, s.retry))
	mux.Handle("GET /agents", s.auth(queue.RoleViewer, s.agents))
	if s.Schedules != nil {
		mux.Handle("GET /schedules", s.auth(queue.RoleViewer, s.schedules))
		mux.Handle("POST /schedules", s.auth(queue.RoleSubmitter, s.addSchedule))
		mux.Handle("POST /schedules/{name}/{action}", s.auth(queue.RoleSubmitter, s.scheduleAction))
	}
	return Protect(securityHeaders(mux))
}

// Protect refuses cross-origin form posts (and every other unsafe method) to h: a
// page of another site cannot make a logged-in browser submit, cancel or retry.
func Protect(h http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "cross-origin request refused", http.StatusForbidden)
	}))
	return cop.Handler(h)
}

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'")
		h.ServeHTTP(w, r)
	})
}

func staticHandler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}

func (s *Server) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

// tokenOf checks a token as the API does: known, not revoked.
func (s *Server) tokenOf(ctx context.Context, tok string) (queue.APIToken, error) {
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return queue.APIToken{}, errclass.New(errclass.Unauthorized, "enter an API token (rpt tokens create NAME --role ROLE prints one)")
	}
	sum := queue.TokenSHA256(tok)
	t, err := s.Jobs.Store.TokenByHash(ctx, sum)
	if errors.Is(err, queue.ErrNotFound) || err == nil && !queue.TokenHashEqual(t.SHA256, sum) {
		return queue.APIToken{}, errclass.New(errclass.Unauthorized, "unknown API token")
	}
	if err != nil {
		return queue.APIToken{}, err
	}
	if t.RevokedAt != nil {
		return queue.APIToken{}, errclass.Errorf(errclass.Unauthorized, "API token %q was revoked", t.Name)
	}
	return t, nil
}

// auth lets a request through with a valid session of at least role; without one, a
// page asks to log in (and comes back), a post is refused.
func (s *Server) auth(role string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(CookieName)
		var t queue.APIToken
		if err == nil {
			t, err = s.tokenOf(r.Context(), c.Value)
		}
		if err != nil {
			if jobs.Class(err) != errclass.Unauthorized && !errors.Is(err, http.ErrNoCookie) {
				s.errorPage(w, r, err)
				return
			}
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			s.render(w, r, http.StatusUnauthorized, "error", map[string]any{"Title": "Log in first", "Message": "Your session has ended: log in again."})
			return
		}
		ctx := context.WithValue(r.Context(), ctxKey{}, t)
		if queue.RoleRank(t.Role) < queue.RoleRank(role) {
			s.render(w, r.WithContext(ctx), http.StatusForbidden, "error", map[string]any{"Title": "Not allowed",
				"Message": fmt.Sprintf("Your token %q has the role %s; this needs %s.", t.Name, t.Role, role)})
			return
		}
		if err := s.Jobs.Store.TokenTouch(ctx, t.ID); err != nil {
			s.log().Warn("web: record token use", "token", t.Name, "error", err)
		}
		h(w, r.WithContext(ctx))
	})
}

// safeNext keeps a post-login redirect on this site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	return next
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "login", map[string]any{"Title": "Log in", "Next": safeNext(r.URL.Query().Get("next"))})
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		s.render(w, r, http.StatusBadRequest, "login", map[string]any{"Title": "Log in", "Error": "the form could not be read"})
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	t, err := s.tokenOf(r.Context(), r.PostForm.Get("token"))
	if err != nil {
		status := http.StatusUnauthorized
		if jobs.Class(err) != errclass.Unauthorized {
			status = jobs.Class(err).HTTP()
			s.log().Error("web: login", "error", err)
		}
		s.render(w, r, status, "login", map[string]any{"Title": "Log in", "Next": next, "Error": err.Error()})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: strings.TrimSpace(r.PostForm.Get("token")), Path: "/",
		MaxAge: int(SessionLength / time.Second), HttpOnly: true, Secure: s.Secure, SameSite: http.SameSiteStrictMode})
	s.log().Info("web: login", "token", t.Name)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: s.Secure,
		SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// formKey is a random key per rendered form: a submit posted twice (a double click, a
// reload of the answer) queues one job.
func formKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// submitToken is the job's submit token for a form key, in the caller's namespace.
func submitToken(tokenName, key string) string {
	sum := sha256.Sum256([]byte(tokenName + "\x00" + key))
	return queue.OriginWeb + "-" + hex.EncodeToString(sum[:20])
}

func jobClass(err error) errclass.Class { return jobs.Class(err) }

// errorPage answers err with its class's status on a page; internal details stay in
// the log.
func (s *Server) errorPage(w http.ResponseWriter, r *http.Request, err error) {
	class := jobs.Class(err)
	msg := err.Error()
	if class == errclass.Internal {
		s.log().Error("web: internal error", "path", r.URL.Path, "error", err)
		msg = "internal error (logged by the server)"
	}
	s.render(w, r, class.HTTP(), "error", map[string]any{"Title": http.StatusText(class.HTTP()), "Message": msg})
}
