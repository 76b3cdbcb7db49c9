package postgres

import (
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestCitusLostNodeErrors: the errors Citus raised in the randomized fault
// run when a worker restarted are transient, and a node's own errors
// (which keep their state) and other internal errors are not.
// TestCitusWorkerLostIsTransient raises the ones a test can time.
func TestCitusLostNodeErrors(t *testing.T) {
	for _, c := range []struct {
		err  pgconn.PgError
		want bool
	}{
		// The relay's publish, seen in the fault run of issue #25.
		{pgconn.PgError{Code: "XX000", Message: "failure on connection marked as essential: 127.0.0.1:39803"}, true},
		{pgconn.PgError{Code: "XX000", Message: "SSL SYSCALL error: EOF detected\ninvalid socket", Where: "while executing command on 127.0.0.1:41363"}, true},
		{pgconn.PgError{Code: "XX000", Message: "server closed the connection unexpectedly", Where: "while executing command on 127.0.0.1:41363"}, true},
		{pgconn.PgError{Code: "08006", Message: "connection to the remote node postgres@127.0.0.1:41363 failed with the following error: connection not open"}, true},
		// An event written by INSERT ... SELECT as the worker went (the second fault run).
		{pgconn.PgError{Code: "58030", Message: "failed to COPY to shard 102026 on 127.0.0.1:35107"}, true},
		{pgconn.PgError{Code: "58030", Message: "failed to complete COPY on 127.0.0.1:35107"}, true},
		{pgconn.PgError{Code: "XX000", Message: "could not connect to any active placements"}, true},
		// A one-worker transaction's COMMIT whose connection broke (CI's fault
		// run): Citus commits such a transaction without two phases, so this
		// is the commit's outcome unknown, as a lost COMMIT on one PostgreSQL.
		{pgconn.PgError{Code: "XX000", Message: "could not commit transaction for shard 102046 on at least one active node"}, true},
		// A disk's fault is not a lost node.
		{pgconn.PgError{Code: "58030", Message: "could not read block 7 in file \"base/16384/16385\": read only 0 of 8192 bytes"}, false},
		// A worker's own internal error is a bug there, not a lost node.
		{pgconn.PgError{Code: "XX000", Message: "cache lookup failed for type 1234", Where: "while executing command on 127.0.0.1:41363"}, false},
		{pgconn.PgError{Code: "XX000", Message: "SSL SYSCALL error: EOF detected"}, false},
		{pgconn.PgError{Code: "23505", Message: "duplicate key value violates unique constraint", Where: "while executing command on 127.0.0.1:41363"}, false},
	} {
		if got := Transient(&c.err); got != c.want {
			t.Errorf("%s %q (%q): transient %v, want %v", c.err.Code, c.err.Message, c.err.Where, got, c.want)
		}
	}
}
