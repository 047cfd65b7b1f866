package etl

// SetAlterLockWait sets how long an ALTER waits for a metadata lock (seconds) and
// returns a function that restores it. Only for tests that are not parallel.
func SetAlterLockWait(s int) func() {
	old := alterLockWait
	alterLockWait = s
	return func() { alterLockWait = old }
}
