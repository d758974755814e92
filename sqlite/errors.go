package sqlite

import (
	"errors"

	msqlite "modernc.org/sqlite"
)

// SQLite result codes callers map to their own protocol errors (the
// extended codes keep the primary code in the low byte).
const (
	CodeError      = 1
	CodeBusy       = 5
	CodeLocked     = 6
	CodeNoMem      = 7
	CodeReadOnly   = 8
	CodeInterrupt  = 9
	CodeConstraint = 19
	CodeTooBig     = 18
	CodeAuth       = 23

	CodeConstraintNotNull    = CodeConstraint | 5<<8
	CodeConstraintPrimaryKey = CodeConstraint | 6<<8
	CodeConstraintUnique     = CodeConstraint | 8<<8
	// CodeConstraintCommitHook: a commit hook (the commit check) turned
	// the COMMIT into a rollback.
	CodeConstraintCommitHook = CodeConstraint | 2<<8
)

// ErrorCode returns the (extended) SQLite result code carried by err, or 0
// when err does not come from SQLite.
func ErrorCode(err error) int {
	var e *msqlite.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return 0
}

// ErrHook wraps the error of a commit hook: the transaction is in the
// database but its replication failed, so the client is told it failed.
var ErrHook = errors.New("sqlite: commit not replicated")
