package crontab

import (
	"crypto/sha256"
	"time"
)

// Watch makes Run re-read the crontab files at paths (with def as their default zone)
// at least once a minute and, when one has changed, run the new lines from then on.
// A changed file that does not load, or that NewRunner refuses, is logged and the lines
// running so far keep running; the next change is tried again.
func (r *Runner) Watch(paths []string, def *time.Location) {
	r.watch = paths
	r.watchLoc = def
	r.sums = r.fileSums()
}

func (r *Runner) fileSums() map[string][sha256.Size]byte {
	out := map[string][sha256.Size]byte{}
	for _, p := range r.watch {
		data, err := ReadFile(p)
		if err != nil {
			continue // missing now: a zero sum, so its return is a change
		}
		out[p] = sha256.Sum256(data)
	}
	return out
}

// reloadIfChanged re-reads the watched files when their contents changed.
func (r *Runner) reloadIfChanged() {
	if len(r.watch) == 0 {
		return
	}
	sums := r.fileSums()
	changed := false
	for _, p := range r.watch {
		if sums[p] != r.sums[p] {
			changed = true
		}
	}
	if !changed {
		return
	}
	r.sums = sums
	var files []*File
	for _, p := range r.watch {
		f, err := Load(p, r.watchLoc)
		if err != nil {
			r.Log.Error("changed crontab not loaded; the lines running so far keep running", "file", p, "error", err.Error())
			return
		}
		files = append(files, f)
	}
	nr, err := NewRunner(files, r.Jobs, r.Log)
	if err != nil {
		r.Log.Error("changed crontab refused; the lines running so far keep running", "error", err.Error())
		return
	}
	r.lines = nr.lines
	r.Log.Info("crontab reloaded", "lines", r.String())
}
