package libsql

import (
	"errors"
	"strconv"
	"strings"
)

// stmtKind says where a statement may run: reads go to the reader pool
// outside a transaction, everything else to the single writer.
type stmtKind int

const (
	kindRead stmtKind = iota
	kindWrite
	kindBegin
	kindCommit
	kindRollback
	kindSavepoint
	kindRelease
	kindRollbackTo
)

// sqlStmt is one statement cut out of a client's SQL text.
type sqlStmt struct {
	text    string
	kind    stmtKind
	params  []string // by index-1: the parameter's name with its prefix, or "" for ?/?NNN
	explain bool
}

// sqlSpace is the whitespace the lexer skips. Only ASCII: to SQLite a byte
// of 0x80 or more is part of an identifier, so U+2003 alone is a statement.
const sqlSpace = " \t\n\r\f\v"

var errUnterminated = errors.New("unterminated string, identifier or comment")

// DefaultMaxParams bounds ?NNN so that a client cannot make us allocate a
// huge parameter table (SQLite's own limit is 32766).
const DefaultMaxParams = 32766

// splitSQL cuts text into statements at top-level semicolons (not those
// inside a CREATE TRIGGER body), dropping empty ones, and classifies each.
// It is a lexer, not a parser: SQLite still parses every statement.
func splitSQL(text string) ([]sqlStmt, error) {
	var out []sqlStmt
	var (
		start    = 0
		words    []string // first upper-cased keywords of the current statement
		anyWrite bool     // INSERT/UPDATE/DELETE/REPLACE seen anywhere (WITH … INSERT)
		trigger  bool     // CREATE … TRIGGER: ; inside BEGIN…END do not split
		body     int      // BEGIN…END nesting inside a trigger
		cases    int      // CASE…END nesting inside a trigger body
		params   []string
		named    map[string]int
		tokens   int
	)
	finish := func(end int) {
		if tokens > 0 {
			st := sqlStmt{text: strings.Trim(text[start:end], sqlSpace), params: params}
			st.kind, st.explain = classify(words, anyWrite)
			out = append(out, st)
		}
		start = end + 1
		words, anyWrite, trigger, body, cases, params, named, tokens = nil, false, false, 0, 0, nil, nil, 0
	}
	// addParam follows SQLite's numbering: ? takes the largest index so
	// far + 1, ?NNN takes NNN, a name reuses its first index.
	addParam := func(name string, idx int) error {
		if idx <= 0 {
			if _, ok := named[name]; ok {
				return nil
			}
			idx = len(params) + 1
		}
		if idx > DefaultMaxParams {
			return errors.New("too many SQL variables")
		}
		for len(params) < idx {
			params = append(params, "")
		}
		if name != "" {
			if named == nil {
				named = map[string]int{}
			}
			named[name] = idx
			params[idx-1] = name
		}
		return nil
	}
	i := 0
	for i < len(text) {
		c := text[i]
		switch {
		case strings.IndexByte(sqlSpace, c) >= 0:
			i++
		case c == '-' && i+1 < len(text) && text[i+1] == '-':
			j := strings.IndexByte(text[i:], '\n')
			if j < 0 {
				i = len(text)
			} else {
				i += j + 1
			}
		case c == '/' && i+1 < len(text) && text[i+1] == '*':
			j := strings.Index(text[i+2:], "*/")
			if j < 0 {
				return nil, errUnterminated
			}
			i += j + 4
		case c == '\'' || c == '"' || c == '`' || c == '[':
			closer := c
			if c == '[' {
				closer = ']'
			}
			j := i + 1
			for {
				k := strings.IndexByte(text[j:], closer)
				if k < 0 {
					return nil, errUnterminated
				}
				j += k + 1
				// Doubled quote is an escaped quote (not for [ ]).
				if closer != ']' && j < len(text) && text[j] == closer {
					j++
					continue
				}
				break
			}
			tokens++
			i = j
		case c == ';':
			if trigger && body > 0 {
				i++
				continue
			}
			finish(i)
			i++
		case c == '?':
			j := i + 1
			for j < len(text) && text[j] >= '0' && text[j] <= '9' {
				j++
			}
			idx := len(params) + 1
			if j > i+1 {
				n, err := strconv.Atoi(text[i+1 : j])
				if err != nil || n < 1 || n > DefaultMaxParams {
					return nil, errors.New("bad parameter number " + text[i:j])
				}
				idx = n
			}
			if err := addParam("", idx); err != nil {
				return nil, err
			}
			tokens++
			i = j
		case (c == ':' || c == '@' || c == '$') && i+1 < len(text) && isIdent(text[i+1]):
			j := i + 1
			for j < len(text) && isIdent(text[j]) {
				j++
			}
			if err := addParam(text[i:j], 0); err != nil {
				return nil, err
			}
			tokens++
			i = j
		case isIdent(c):
			j := i
			for j < len(text) && isIdent(text[j]) {
				j++
			}
			w := strings.ToUpper(text[i:j])
			tokens++
			if len(words) < 4 {
				words = append(words, w)
			}
			switch w {
			case "INSERT", "UPDATE", "DELETE", "REPLACE":
				anyWrite = true
			case "TRIGGER":
				if len(words) >= 2 && words[0] == "CREATE" {
					trigger = true
				}
			case "BEGIN":
				if trigger {
					body++
				}
			case "CASE":
				if trigger && body > 0 {
					cases++
				}
			case "END":
				if trigger && body > 0 {
					if cases > 0 {
						cases--
					} else {
						body--
					}
				}
			}
			i = j
		default:
			tokens++
			i++
		}
	}
	finish(len(text))
	return out, nil
}

func isIdent(c byte) bool {
	return c == '_' || c == '$' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}

func classify(words []string, anyWrite bool) (stmtKind, bool) {
	if len(words) == 0 {
		return kindWrite, false
	}
	switch words[0] {
	case "SELECT", "VALUES":
		return kindRead, false
	case "WITH":
		if anyWrite {
			return kindWrite, false
		}
		return kindRead, false
	case "EXPLAIN":
		return kindRead, true
	case "PRAGMA":
		// Only introspection pragmas pass the authorizer; a setter fails
		// there or on the read-only reader.
		return kindRead, false
	case "BEGIN":
		return kindBegin, false
	case "COMMIT", "END":
		return kindCommit, false
	case "ROLLBACK":
		for _, w := range words[1:] {
			if w == "TO" {
				return kindRollbackTo, false
			}
		}
		return kindRollback, false
	case "SAVEPOINT":
		return kindSavepoint, false
	case "RELEASE":
		return kindRelease, false
	}
	return kindWrite, false
}

// isReadOnly is Hrana's describe is_readonly (SQLite's sqlite3_stmt_readonly
// is true for transaction control too).
func (s sqlStmt) isReadOnly() bool {
	return s.kind != kindWrite
}
