package sqlxlate

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"vitess.io/vitess/go/vt/sqlparser"
)

// DefaultCacheSize is the number of plans a Translator keeps when
// NewTranslator is given a size <= 0: enough for every distinct statement
// shape a WordPress page sends, with room for plugins.
const DefaultCacheSize = 4096

// MaxStatementLen bounds what the translator will parse; longer statements
// (bulk imports) are still translated but never cached.
const maxCachedLen = 64 << 10

// Translator translates MySQL statements and caches the plans by
// (sql, catalog version). It is safe for concurrent use.
type Translator struct {
	parser *sqlparser.Parser
	size   int

	mu    sync.Mutex
	lru   *list.List // of *cacheEntry, front = most recent
	items map[cacheKey]*list.Element
}

type cacheKey struct {
	sql     string
	db      string
	version uint64
}

type cacheEntry struct {
	key  cacheKey
	plan *Plan
	err  error
}

// NewTranslator returns a Translator caching up to cacheSize plans
// (DefaultCacheSize when cacheSize <= 0).
func NewTranslator(cacheSize int) *Translator {
	if cacheSize <= 0 {
		cacheSize = DefaultCacheSize
	}
	return &Translator{
		parser: parser,
		size:   cacheSize,
		lru:    list.New(),
		items:  make(map[cacheKey]*list.Element),
	}
}

// Translate translates one MySQL statement (no trailing statements; the
// wire front splits multi-statements). Errors are *Error.
func (t *Translator) Translate(ctx context.Context, sql string, cat Catalog) (*Plan, error) {
	key := cacheKey{sql: sql, db: cat.Database(), version: cat.Version()}
	if p, err, ok := t.get(key); ok {
		return p, err
	}
	p, err := t.translate(ctx, sql, cat)
	var xe *Error
	if err != nil && !errors.As(err, &xe) {
		// Catalog I/O failures are not cached: they may be transient.
		return nil, err
	}
	if len(sql) <= maxCachedLen {
		t.put(key, p, err)
	}
	return p, err
}

func (t *Translator) get(k cacheKey) (*Plan, error, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	el, ok := t.items[k]
	if !ok {
		return nil, nil, false
	}
	t.lru.MoveToFront(el)
	e := el.Value.(*cacheEntry)
	return e.plan, e.err, true
}

func (t *Translator) put(k cacheKey, p *Plan, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if el, ok := t.items[k]; ok {
		t.lru.MoveToFront(el)
		return
	}
	t.items[k] = t.lru.PushFront(&cacheEntry{key: k, plan: p, err: err})
	for t.lru.Len() > t.size {
		el := t.lru.Back()
		t.lru.Remove(el)
		delete(t.items, el.Value.(*cacheEntry).key)
	}
}

func (t *Translator) translate(ctx context.Context, sql string, cat Catalog) (p *Plan, err error) {
	defer func() {
		// A translator bug must fail one statement, not the connection.
		if r := recover(); r != nil {
			p, err = nil, &Error{Code: 1105, State: "HY000", Message: fmt.Sprintf("internal translator error: %v", r)}
		}
	}()
	trimmed := strings.TrimSpace(sql)
	trimmed = strings.TrimRight(trimmed, "; \t\r\n")
	if trimmed == "" {
		return nil, &Error{Code: 1065, State: "42000", Message: "Query was empty"}
	}
	if len(trimmed) > 4 && strings.EqualFold(trimmed[:4], "set ") {
		trimmed = setAssign(trimmed)
	}
	var stmt sqlparser.Statement
	var bv sqlparser.BindVars
	if isDDL(trimmed) {
		// Parse2 accepts half-parsed DDL (and logs about it); MySQL would not.
		stmt, err = t.parser.ParseStrictDDL(trimmed)
	} else {
		stmt, bv, err = t.parser.Parse2(trimmed)
	}
	if err != nil {
		return nil, parseError(err, trimmed)
	}
	if ddl, ok := stmt.(sqlparser.DDLStatement); ok && !ddl.IsFullyParsed() {
		if _, err := t.parser.ParseStrictDDL(trimmed); err != nil {
			return nil, parseError(err, trimmed)
		}
	}
	if err := ownDatabaseOnly(stmt, cat.Database()); err != nil {
		return nil, err
	}
	x := &xlate{ctx: ctx, cat: cat, src: trimmed, tables: map[string]*Table{}}
	if err := x.findTextColumns(stmt); err != nil {
		return nil, err
	}
	p, err = x.statement(stmt)
	if err != nil {
		return nil, err
	}
	if x.err != nil {
		return nil, x.err
	}
	p.Params = len(bv)
	p.SessionParams = append(p.SessionParams, x.params...)
	return p, nil
}

// ownDatabaseOnly refuses every reference to a table or schema of
// another database (information_schema aside): a connection is one
// site's, and a DROP TABLE other.t must not touch this site's t.
func ownDatabaseOnly(stmt sqlparser.Statement, db string) error {
	var bad string
	check := func(q string) {
		if bad == "" && q != "" && !strings.EqualFold(q, db) && !strings.EqualFold(q, "information_schema") {
			bad = q
		}
	}
	_ = sqlparser.Walk(func(node sqlparser.SQLNode) (bool, error) {
		switch n := node.(type) {
		case sqlparser.TableName:
			check(n.Qualifier.String())
		case *sqlparser.ShowBasic:
			check(n.DbName.String())
		case *sqlparser.RenameTable:
			for _, p := range n.TablePairs {
				check(p.FromTable.Qualifier.String())
				check(p.ToTable.Qualifier.String())
			}
		case *sqlparser.RenameTableName:
			check(n.Table.Qualifier.String())
		}
		return bad == "", nil
	}, stmt)
	if bad != "" {
		return &Error{Code: ErrDBAccess, State: "42000", Message: fmt.Sprintf("Access denied to database '%s'", bad)}
	}
	return nil
}

// setAssign rewrites SET @v := x to SET @v = x (same meaning in SET; vitess
// parses only the latter), leaving quoted text alone.
func setAssign(sql string) string {
	if !strings.Contains(sql, ":=") {
		return sql
	}
	b := []byte(sql)
	var quote byte
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case quote != 0:
			if c == '\\' && quote != '`' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"' || c == '`':
			quote = c
		case c == ':' && i+1 < len(b) && b[i+1] == '=':
			b[i] = ' '
		}
	}
	return string(b)
}

// isDDL reports statements that start with a DDL keyword.
func isDDL(sql string) bool {
	for strings.HasPrefix(sql, "/*") {
		end := strings.Index(sql, "*/")
		if end < 0 {
			return false
		}
		sql = strings.TrimSpace(sql[end+2:])
	}
	word := sql
	if i := strings.IndexAny(sql, " \t\r\n("); i >= 0 {
		word = sql[:i]
	}
	switch strings.ToLower(word) {
	case "create", "alter", "drop", "rename", "truncate":
		return true
	}
	return false
}

func parseError(err error, sql string) *Error {
	msg := err.Error()
	if i := strings.LastIndex(msg, "\n"); i >= 0 && strings.HasPrefix(msg, "Code:") {
		msg = msg[i+1:]
	}
	near := sql
	if len(near) > 80 {
		near = near[:80]
	}
	return &Error{Code: ErrParse, State: "42000", Message: fmt.Sprintf("You have an error in your SQL syntax (%s); near '%s'", strings.TrimSpace(msg), near)}
}

func notSupported(format string, args ...any) *Error {
	return &Error{Code: ErrNotSupported, State: "42000", Message: "This version of ephpm doesn't yet support '" + fmt.Sprintf(format, args...) + "'"}
}

func noSuchTable(db, name string) *Error {
	return &Error{Code: ErrNoSuchTable, State: "42S02", Message: fmt.Sprintf("Table '%s.%s' doesn't exist", db, name)}
}

// xlate is the state of one translation.
type xlate struct {
	ctx    context.Context
	cat    Catalog
	src    string
	err    error
	params []string
	tables map[string]*Table
	// infoSchema lists the information_schema views the statement reads.
	infoSchema []string
	// upsert: printing an ON DUPLICATE KEY UPDATE clause; rowAlias is the
	// INSERT … AS alias whose columns mean excluded.*.
	upsert   bool
	rowAlias string
	// textCols are column references of text type compared with numbers,
	// which MySQL compares numerically (see findTextColumns).
	textCols map[*sqlparser.ColName]bool
}

func (x *xlate) fail(e error) {
	if x.err == nil {
		x.err = e
	}
}

func (x *xlate) param(name string) string {
	for _, p := range x.params {
		if p == name {
			return ":" + name
		}
	}
	x.params = append(x.params, name)
	return ":" + name
}

func (x *xlate) table(name string) (*Table, error) {
	key := strings.ToLower(name)
	if t, ok := x.tables[key]; ok {
		return t, nil
	}
	t, err := x.cat.Table(x.ctx, name)
	if err != nil {
		return nil, fmt.Errorf("catalog: table %q: %w", name, err)
	}
	x.tables[key] = t
	return t, nil
}

func (x *xlate) mustTable(name string) (*Table, error) {
	t, err := x.table(name)
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, noSuchTable(x.cat.Database(), name)
	}
	return t, nil
}

// statement dispatches on the statement type.
func (x *xlate) statement(stmt sqlparser.Statement) (*Plan, error) {
	switch s := stmt.(type) {
	case *sqlparser.Select, *sqlparser.Union:
		return x.selectPlan(s.(sqlparser.TableStatement))
	case *sqlparser.Insert:
		return x.insertPlan(s)
	case *sqlparser.Update:
		return x.updatePlan(s)
	case *sqlparser.Delete:
		return x.deletePlan(s)
	case *sqlparser.Set:
		return x.setPlan(s)
	case *sqlparser.Use:
		return &Plan{Kind: KindUse, DB: s.DBName.String()}, nil
	case *sqlparser.Begin:
		return &Plan{Kind: KindBegin}, nil
	case *sqlparser.Commit:
		return &Plan{Kind: KindCommit}, nil
	case *sqlparser.Rollback:
		return &Plan{Kind: KindRollback}, nil
	case *sqlparser.Savepoint:
		return &Plan{Kind: KindSavepoint, Name: s.Name.String()}, nil
	case *sqlparser.Release:
		return &Plan{Kind: KindRelease, Name: s.Name.String()}, nil
	case *sqlparser.SRollback:
		return &Plan{Kind: KindRollbackTo, Name: s.Name.String()}, nil
	case *sqlparser.LockTables, *sqlparser.UnlockTables, *sqlparser.Flush:
		return &Plan{Kind: KindNoop}, nil
	case *sqlparser.CreateTable:
		return x.createTablePlan(s)
	case *sqlparser.AlterTable:
		return x.alterTablePlan(s)
	case *sqlparser.DropTable:
		return x.dropTablePlan(s)
	case *sqlparser.RenameTable:
		return x.renameTablePlan(s)
	case *sqlparser.TruncateTable:
		return x.truncatePlan(s)
	case *sqlparser.Show:
		return x.showPlan(s)
	case *sqlparser.ExplainTab:
		return x.describePlan(s.Table, s.Wild, false)
	case *sqlparser.CreateDatabase, *sqlparser.AlterDatabase:
		return &Plan{Kind: KindNoop}, nil
	case *sqlparser.Analyze:
		return x.adminResult("analyze", s.Table.Name.String())
	case *sqlparser.OtherAdmin:
		return &Plan{Kind: KindNoop}, nil
	case *sqlparser.CreateView, *sqlparser.AlterView, *sqlparser.DropView:
		return nil, notSupported("views")
	case *sqlparser.CallProc:
		return nil, notSupported("stored procedures")
	case *sqlparser.ExplainStmt:
		return nil, notSupported("EXPLAIN of a statement")
	case *sqlparser.PrepareStmt, *sqlparser.ExecuteStmt, *sqlparser.DeallocateStmt:
		return nil, notSupported("SQL-level PREPARE/EXECUTE")
	}
	return nil, notSupported("%s", strings.TrimSpace(firstWords(sqlparser.String(stmt), 3)))
}

func firstWords(s string, n int) string {
	f := strings.Fields(s)
	if len(f) > n {
		f = f[:n]
	}
	return strings.Join(f, " ")
}
