package sqlxlate

import (
	"regexp"
	"strings"
)

var (
	reNoTable  = regexp.MustCompile(`no such table: (?:\w+\.)?(\S+)`)
	reNoColumn = regexp.MustCompile(`no such column: (\S+)`)
	reUnique   = regexp.MustCompile(`UNIQUE constraint failed: ([^ ,]+)`)
	reNotNull  = regexp.MustCompile(`NOT NULL constraint failed: \S+\.(\S+)`)
	reExists   = regexp.MustCompile(`table (\S+) already exists`)
)

// SQLiteError maps an error from SQLite running a translated statement to
// the MySQL error a client expects; nil if err is nil. Unknown errors
// become 1105 with SQLite's message, so nothing is silently swallowed.
func SQLiteError(err error, database string) *Error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "no such table"):
		name := ""
		if m := reNoTable.FindStringSubmatch(msg); m != nil {
			name = strings.TrimRight(m[1], ")")
		}
		return noSuchTable(database, name)
	case strings.Contains(msg, "no such column"):
		col := ""
		if m := reNoColumn.FindStringSubmatch(msg); m != nil {
			col = m[1]
		}
		return &Error{Code: ErrBadField, State: "42S22", Message: "Unknown column '" + col + "' in 'field list'"}
	case strings.Contains(msg, "UNIQUE constraint failed"), strings.Contains(msg, "PRIMARY KEY constraint failed"):
		key := "PRIMARY"
		if m := reUnique.FindStringSubmatch(msg); m != nil {
			key = m[1]
		}
		return &Error{Code: 1062, State: "23000", Message: "Duplicate entry for key '" + key + "'"}
	case strings.Contains(msg, "NOT NULL constraint failed"):
		col := ""
		if m := reNotNull.FindStringSubmatch(msg); m != nil {
			col = m[1]
		}
		return &Error{Code: 1048, State: "23000", Message: "Column '" + col + "' cannot be null"}
	case strings.Contains(msg, "already exists"):
		name := ""
		if m := reExists.FindStringSubmatch(msg); m != nil {
			name = m[1]
		}
		return &Error{Code: ErrTableExists, State: "42S01", Message: "Table '" + name + "' already exists"}
	case strings.Contains(msg, "values were supplied") || strings.Contains(msg, "must have the same number of terms") || strings.Contains(msg, "values for") && strings.Contains(msg, "columns"):
		return &Error{Code: 1136, State: "21S01", Message: "Column count doesn't match value count at row 1"}
	case strings.Contains(msg, "database is locked"), strings.Contains(msg, "SQLITE_BUSY"):
		return &Error{Code: 1205, State: "HY000", Message: "Lock wait timeout exceeded; try restarting transaction"}
	case strings.Contains(msg, "no such function"):
		return &Error{Code: 1305, State: "42000", Message: "FUNCTION " + database + "." + strings.TrimSpace(msg[strings.Index(msg, "no such function")+len("no such function:"):]) + " does not exist"}
	case strings.Contains(msg, "syntax error"):
		return &Error{Code: ErrParse, State: "42000", Message: "You have an error in your SQL syntax (SQLite: " + msg + ")"}
	}
	return &Error{Code: 1105, State: "HY000", Message: msg}
}
