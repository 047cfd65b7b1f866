package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler serves the agent's endpoints:
//   - /healthz: 200 while Run's loop is turning; 503 before Run, after it returns, or
//     when the loop has not come round for longer than it ever should (a stuck agent
//     is restarted by its supervisor, a busy one is not).
//   - /readyz: 200 while the agent takes work (not draining, last queue call answered);
//     503 with the reason otherwise. A load balancer or a rolling update waits on it.
//   - /metrics: Prometheus metrics of this agent and of the queue.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if reason := a.unhealthy(); reason != "" {
			http.Error(w, reason, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if reason := a.notReady(); reason != "" {
			http.Error(w, reason, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.metrics.reg, promhttp.HandlerOpts{
		ErrorLog: slogPrinter{a},
		// A scrape whose collector fails still shows the rest.
		ErrorHandling: promhttp.ContinueOnError,
	}))
	return mux
}

// slogPrinter gives promhttp a place to log through the agent's logger.
type slogPrinter struct{ a *Agent }

func (p slogPrinter) Println(v ...any) { p.a.log.Warn("metrics: " + fmt.Sprint(v...)) }

// ListenAddr is the address the endpoints are served on once Run is listening (useful
// with Listen "127.0.0.1:0"); nil before that or when Listen is empty.
func (a *Agent) ListenAddr() net.Addr {
	p := a.addr.Load()
	if p == nil {
		return nil
	}
	return *p
}

// stallLimit is the longest the loop may go without coming round: one iteration makes
// at most a few queue calls of callTimeout each, and tickers fire at least every
// max(PollInterval, AgentHeartbeatInterval).
func (a *Agent) stallLimit() time.Duration {
	return a.cfg.LeaseDuration + 2*max(a.cfg.PollInterval, a.cfg.AgentHeartbeatInterval)
}

// loopBeat records that the loop came round, for /healthz.
func (a *Agent) loopBeat() { a.lastLoop.Store(time.Now().UnixNano()) }

func (a *Agent) unhealthy() string {
	if !a.running.Load() {
		return "agent loop not running"
	}
	if since := time.Since(time.Unix(0, a.lastLoop.Load())); since > a.stallLimit() {
		return fmt.Sprintf("agent loop stalled for %s", since.Round(time.Second))
	}
	return ""
}

func (a *Agent) notReady() string {
	switch {
	case !a.running.Load():
		return "agent loop not running"
	case a.drain.Load():
		return "draining: claiming no new jobs"
	case !a.queueOK.Load():
		return "queue database unavailable: " + a.lastQueueError()
	}
	return ""
}

func (a *Agent) lastQueueError() string {
	a.errMu.Lock()
	defer a.errMu.Unlock()
	return a.lastErr
}

// serve starts the HTTP endpoints on cfg.Listen; the returned stop shuts them down. A
// listen error is Run's error: an agent that cannot be probed would be killed by its
// supervisor anyway, so it had better say why at once.
func (a *Agent) serve() (stop func(), err error) {
	if a.cfg.Listen == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", a.cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen for agent endpoints on %s: %w", a.cfg.Listen, err)
	}
	addr := ln.Addr()
	a.addr.Store(&addr)
	srv := &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("agent endpoints stopped", keyError, err.Error())
		}
	}()
	a.log.Info("serving /healthz, /readyz and /metrics", "addr", addr.String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
		}
		<-done
	}, nil
}
