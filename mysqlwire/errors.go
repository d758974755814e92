package mysqlwire

import (
	"context"
	"errors"
	"regexp"
	"strings"

	"vitess.io/vitess/go/mysql/sqlerror"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/sqlite"
	"github.com/ephpm/ephpm/sqlxlate"
)

var (
	reNoTable   = regexp.MustCompile(`no such table: (?:\w+\.)?(\S+)`)
	reNoColumn  = regexp.MustCompile(`no such column: (\S+)`)
	reExists    = regexp.MustCompile(`table "?([^" ]+)"? already exists`)
	reUnique    = regexp.MustCompile(`(?:UNIQUE|PRIMARY KEY) constraint failed: (.+?)(?: \(\d+\))?$`)
	reNotNull   = regexp.MustCompile(`NOT NULL constraint failed: (?:\w+\.)?(\S+?)(?: \(\d+\))?$`)
	reSQLiteMsg = regexp.MustCompile(`^SQL logic error: (.*) \(1\)$`)
)

// toSQLError maps any error to the bare *sqlerror.SQLError vitess needs to
// send a proper error packet (a wrapped one would become 1105 "unknown").
func toSQLError(err error, database string) error {
	var se *sqlerror.SQLError
	if errors.As(err, &se) {
		return se
	}
	var ne *ephpm.SQLError
	if errors.As(err, &ne) {
		// The primary's answer to a forwarded statement.
		return sqlerror.NewSQLError(sqlerror.ErrorCode(ne.Code), ne.State, ne.Message)
	}
	var xe *sqlxlate.Error
	if errors.As(err, &xe) {
		state := xe.State
		if state == "" {
			state = sqlerror.SSUnknownSQLState
		}
		return sqlerror.NewSQLErrorf(sqlerror.ErrorCode(xe.Code), state, "%s", xe.Message)
	}
	switch {
	case errors.Is(err, ephpm.ErrNoLease):
		// 1290 as a read-only server answers: the write did not run (or
		// its COMMIT rolled back); the session stays usable for reads.
		// The message names the site and why (replication.LeaseError).
		return sqlerror.NewSQLErrorf(sqlerror.EROptionPreventsStatement, sqlerror.SSUnknownSQLState, "%s", err.Error())
	case sqlite.ErrorCode(err) == sqlite.CodeConstraintCommitHook:
		// The commit check refused a commit whose error came from its
		// rows (INSERT … RETURNING): the same refusal, without its words.
		return sqlerror.NewSQLErrorf(sqlerror.EROptionPreventsStatement, sqlerror.SSUnknownSQLState, "This node may not commit writes for the site now (no primary lease); the transaction was rolled back")
	case errors.Is(err, ephpm.ErrCommitUnconfirmed):
		// Not 1180 (error during COMMIT: rolled back): the commit is on
		// the primary, only its confirmation is missing.
		return sqlerror.NewSQLErrorf(sqlerror.ERUnknownError, sqlerror.SSUnknownSQLState, "%s", err.Error())
	case errors.Is(err, ephpm.ErrNotPrimary):
		// What a MySQL replica says: a write on a replica's copy that
		// did not go through the account's Forwarder.
		return sqlerror.NewSQLErrorf(sqlerror.EROptionPreventsStatement, sqlerror.SSUnknownSQLState, "The MySQL server is running with the --read-only option so it cannot execute this statement")
	case errors.Is(err, sqlite.ErrLockTimeout):
		return sqlerror.NewSQLErrorf(sqlerror.ERLockWaitTimeout, sqlerror.SSUnknownSQLState, "Lock wait timeout exceeded; try restarting transaction")
	case errors.Is(err, sqlite.ErrStatementTimeout), errors.Is(err, context.DeadlineExceeded):
		return sqlerror.NewSQLErrorf(sqlerror.ERQueryTimeout, sqlerror.SSUnknownSQLState, "Query execution was interrupted, maximum statement execution time exceeded")
	case errors.Is(err, context.Canceled), errors.Is(err, sqlite.ErrClosed), errors.Is(err, sqlite.ErrClientGone),
		sqlite.ErrorCode(err)&0xff == sqlite.CodeInterrupt:
		return sqlerror.NewSQLErrorf(sqlerror.ERQueryInterrupted, sqlerror.SSQueryInterrupted, "Query execution was interrupted")
	}
	if xe := sqlxlate.ResultTooLong(err); xe != nil {
		// A Go function's result over max_allowed_packet (its message
		// crossed SQLite as text).
		return sqlerror.NewSQLErrorf(sqlerror.ErrorCode(xe.Code), xe.State, "%s", xe.Message)
	}
	msg := err.Error()
	if m := reSQLiteMsg.FindStringSubmatch(msg); m != nil {
		msg = m[1]
	}
	code := sqlite.ErrorCode(err)
	switch {
	case code == sqlite.CodeConstraintUnique || code == sqlite.CodeConstraintPrimaryKey:
		key := "PRIMARY"
		if m := reUnique.FindStringSubmatch(msg); m != nil {
			key = m[1]
		}
		return sqlerror.NewSQLErrorf(sqlerror.ERDupEntry, sqlerror.SSConstraintViolation, "Duplicate entry for key '%s'", key)
	case code == sqlite.CodeConstraintNotNull:
		col := "?"
		if m := reNotNull.FindStringSubmatch(msg); m != nil {
			col = m[1]
		}
		return sqlerror.NewSQLErrorf(sqlerror.ERBadNullError, sqlerror.SSConstraintViolation, "Column '%s' cannot be null", col)
	case code&0xff == sqlite.CodeConstraint:
		return sqlerror.NewSQLErrorf(sqlerror.ERUnknownError, sqlerror.SSConstraintViolation, "%s", msg)
	case code&0xff == sqlite.CodeBusy || code&0xff == sqlite.CodeLocked:
		return sqlerror.NewSQLErrorf(sqlerror.ERLockWaitTimeout, sqlerror.SSUnknownSQLState, "Lock wait timeout exceeded; try restarting transaction")
	case code&0xff == sqlite.CodeAuth || strings.Contains(msg, "not authorized"):
		return sqlerror.NewSQLErrorf(sqlerror.ERSpecifiedAccessDenied, "42000", "Access denied; this operation is not allowed")
	case code&0xff == sqlite.CodeReadOnly:
		return sqlerror.NewSQLErrorf(sqlerror.EROptionPreventsStatement, sqlerror.SSUnknownSQLState, "The database is read only")
	case code&0xff == sqlite.CodeTooBig:
		return sqlerror.NewSQLErrorf(sqlerror.ERDataTooLong, "22001", "Data too long: a string, blob or row would be longer than max_allowed_packet (%d bytes)", sqlxlate.MaxLength())
	case code&0xff == sqlite.CodeNoMem:
		return sqlerror.NewSQLErrorf(sqlerror.EROutOfResources, sqlerror.SSUnknownSQLState, "Out of memory: the node's database memory limit is reached; try again later")
	}
	if m := reNoTable.FindStringSubmatch(msg); m != nil {
		return sqlerror.NewSQLErrorf(sqlerror.ERNoSuchTable, sqlerror.SSUnknownTable, "Table '%s.%s' doesn't exist", database, m[1])
	}
	if m := reNoColumn.FindStringSubmatch(msg); m != nil {
		return sqlerror.NewSQLErrorf(sqlerror.ERBadFieldError, sqlerror.SSBadFieldError, "Unknown column '%s' in 'field list'", m[1])
	}
	if m := reExists.FindStringSubmatch(msg); m != nil {
		return sqlerror.NewSQLErrorf(sqlerror.ERTableExists, "42S01", "Table '%s' already exists", m[1])
	}
	if strings.Contains(msg, "syntax error") || strings.Contains(msg, "incomplete input") {
		return sqlerror.NewSQLErrorf(sqlerror.ERParseError, sqlerror.SSClientError, "You have an error in your SQL syntax: %s", msg)
	}
	return sqlerror.NewSQLErrorf(sqlerror.ERUnknownError, sqlerror.SSUnknownSQLState, "%s", msg)
}
