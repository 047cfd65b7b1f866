package mysql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"strings"
	"time"
)

// The claim and the batch completion are the queue's hot path: on a loaded server each
// round trip costs milliseconds (BENCHMARKS.md), and a claim used to take seven of them
// (BEGIN, pauses, candidates, update, events, read back, COMMIT). On the multi pool a
// call may carry several statements, so the transaction goes to the server in two
// calls when nothing gets in the way: one that begins it and reads what the decision
// needs under lock (the leases being completed, the pauses, the candidates with every
// column the claimed jobs are returned with), and one that writes all of it and
// commits. Only statements written by this package go through it, with every value
// bound (interpolated and escaped by the driver): text from outside never reaches it.

// multiTxTimeout bounds the ROLLBACK of a transaction whose call failed.
const multiTxTimeout = 5 * time.Second

// inMultiTx runs fn on one connection of the multi pool, retried on deadlocks as inTx.
// fn begins the transaction itself (its first call starts with START TRANSACTION) and
// ends it with a COMMIT in its last call; when fn fails, the transaction is rolled back
// (a failed call stops at the failing statement, so a COMMIT after it never ran), and a
// connection that cannot roll back is dropped.
func (s *Store) inMultiTx(ctx context.Context, op string, fn func(c *sql.Conn) error) error {
	return s.retried(ctx, op, func() error {
		c, err := s.multi.Conn(ctx)
		if err != nil {
			return err
		}
		defer c.Close()
		if err := fn(c); err != nil {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), multiTxTimeout)
			defer cancel()
			if _, rerr := c.ExecContext(rctx, "ROLLBACK"); rerr != nil {
				_ = c.Raw(func(any) error { return driver.ErrBadConn })
			}
			return err
		}
		return nil
	})
}

// stmts gathers statements to send in one call.
type stmts struct {
	b    strings.Builder
	args []any
}

func (st *stmts) add(q string, args ...any) {
	if st.b.Len() > 0 {
		st.b.WriteString("; ")
	}
	st.b.WriteString(q)
	st.args = append(st.args, args...)
}

// take returns the gathered statements and starts over.
func (st *stmts) take() (string, []any) {
	q, args := st.b.String(), st.args
	st.b.Reset()
	st.args = nil
	return q, args
}

// exec sends the gathered statements, if any.
func (st *stmts) exec(ctx context.Context, c *sql.Conn) error {
	if st.b.Len() == 0 {
		return nil
	}
	q, args := st.take()
	_, err := c.ExecContext(ctx, q, args...)
	return err
}

// query sends the gathered statements and hands the answer to read, which reads its
// result sets in order (nextSet between them). A statement that is not a SELECT has
// none; an error of any statement ends the answer.
func (st *stmts) query(ctx context.Context, c *sql.Conn, read func(rows *sql.Rows) error) error {
	q, args := st.take()
	rows, err := c.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if err := read(rows); err != nil {
		return err
	}
	if err := rows.Err(); err != nil {
		return err
	}
	// The statements after the last SELECT (a COMMIT) answer when the rows close.
	return rows.Close()
}

// nextSet moves rows to the next result set of a multi-statement call.
func nextSet(rows *sql.Rows, what string) error {
	if rows.NextResultSet() {
		return nil
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return fmt.Errorf("%s: no result set", what)
}
