package sqlxlate_test

import (
	"context"
	"database/sql/driver"
	"errors"
	"strings"
	"sync"
	"testing"

	querypb "vitess.io/vitess/go/vt/proto/query"

	"github.com/ephpm/ephpm/sqlxlate"
)

func TestFieldType(t *testing.T) {
	tests := []struct {
		name, decl string
		typ        querypb.Type
		unsigned   bool
		length     uint32
	}{
		{"rowid pk", "INTEGER", querypb.Type_INT64, false, 20},
		{"bigint unsigned", "BIGINT UNSIGNED(20)", querypb.Type_INT64, true, 20},
		{"int", "INT(11)", querypb.Type_INT32, false, 11},
		{"tinyint", "TINYINT(1)", querypb.Type_INT8, false, 1},
		{"varchar", "VARCHAR(191)", querypb.Type_VARCHAR, false, 764},
		{"longtext", "LONGTEXT", querypb.Type_TEXT, false, 4294967295},
		{"datetime", "DATETIME TEXT", querypb.Type_DATETIME, false, 19},
		{"date", "DATE TEXT", querypb.Type_DATE, false, 10},
		{"decimal", "DECIMAL(10,2)", querypb.Type_DECIMAL, false, 12},
		{"double", "DOUBLE", querypb.Type_FLOAT64, false, 22},
		{"varbinary", "VARBINARY BLOB(16)", querypb.Type_VARBINARY, false, 16},
		{"longblob", "LONGBLOB", querypb.Type_BLOB, false, 4294967295},
		{"enum", "ENUM TEXT", querypb.Type_CHAR, false, 1020},
		{"expression", "", querypb.Type_VARCHAR, false, 65535},
		{"lower case", "bigint unsigned(20)", querypb.Type_INT64, true, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			typ, flags, length := sqlxlate.FieldType(tt.decl)
			if typ != tt.typ || (flags&32 != 0) != tt.unsigned || length != tt.length {
				t.Errorf("FieldType(%q) = %v, flags %d, len %d; want %v unsigned=%v len %d", tt.decl, typ, flags, length, tt.typ, tt.unsigned, tt.length)
			}
		})
	}
}

func TestFunctionsRegistered(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range sqlxlate.Functions() {
		if !strings.HasPrefix(f.Name, "mysql_") {
			t.Errorf("%s: not in the mysql_ namespace (would shadow SQLite built-ins)", f.Name)
		}
		if seen[f.Name] {
			t.Errorf("%s registered twice", f.Name)
		}
		seen[f.Name] = true
	}
	for _, want := range []string{"mysql_concat", "mysql_date_add", "mysql_date_format", "mysql_unix_timestamp", "mysql_regexp", "mysql_rand", "mysql_now"} {
		if !seen[want] {
			t.Errorf("missing %s", want)
		}
	}
}

func call(t *testing.T, name string, args ...driver.Value) driver.Value {
	t.Helper()
	for _, f := range sqlxlate.Functions() {
		if f.Name == name {
			v, err := f.Impl(args)
			if err != nil {
				t.Fatalf("%s%v: %v", name, args, err)
			}
			return v
		}
	}
	t.Fatalf("no function %s", name)
	return nil
}

// TestFunctions checks values against what MySQL 8.0 returns.
func TestFunctions(t *testing.T) {
	tests := []struct {
		name string
		fn   string
		args []driver.Value
		want driver.Value
	}{
		{"date_add month end clamps", "mysql_date_add", []driver.Value{"2023-01-31", int64(1), "month"}, "2023-02-28"},
		{"date_sub leap year", "mysql_date_add", []driver.Value{"2024-02-29 12:00:00", int64(1), "-year"}, "2023-02-28 12:00:00"},
		{"date_add keeps date type", "mysql_date_add", []driver.Value{"2024-05-01", int64(36), "hour"}, "2024-05-02 12:00:00"},
		{"date_add day_second", "mysql_date_add", []driver.Value{"2024-05-01 00:00:00", "1 02:03:04", "day_second"}, "2024-05-02 02:03:04"},
		{"date_add zero date is null", "mysql_date_add", []driver.Value{"0000-00-00 00:00:00", int64(1), "day"}, nil},
		{"date_add bad date is null", "mysql_date_add", []driver.Value{"2024-02-30", int64(1), "day"}, nil},
		{"week mode 0 jan 1", "mysql_week", []driver.Value{"2022-01-01"}, int64(0)},
		{"week mode 3 iso", "mysql_week", []driver.Value{"2021-01-03", int64(3)}, int64(53)},
		{"yearweek", "mysql_yearweek", []driver.Value{"2021-01-03", int64(3)}, int64(202053)},
		{"date_format all", "mysql_date_format", []driver.Value{"2009-10-04 22:23:00", "%W %M %Y %h:%i %p %D"}, "Sunday October 2009 10:23 PM 4th"},
		{"date_format %X %V", "mysql_date_format", []driver.Value{"1999-01-01", "%X %V"}, "1998 52"},
		{"unix_timestamp zero", "mysql_unix_timestamp", []driver.Value{"0000-00-00 00:00:00"}, int64(0)},
		{"from_unixtime format", "mysql_from_unixtime", []driver.Value{int64(0), "%Y"}, "1970"},
		{"substring_index negative", "mysql_substring_index", []driver.Value{"a.b.c", ".", int64(-1)}, "c"},
		{"locate case-insensitive", "mysql_locate", []driver.Value{"B", "abc"}, int64(2)},
		{"concat null", "mysql_concat", []driver.Value{"a", nil}, nil},
		{"concat float", "mysql_concat", []driver.Value{"v", 1.5}, "v1.5"},
		{"concat_ws skips null", "mysql_concat_ws", []driver.Value{",", "a", nil, "b"}, "a,b"},
		{"field", "mysql_field", []driver.Value{"C", "a", "b", "c"}, int64(3)},
		{"cast int prefix", "mysql_cast_int", []driver.Value{"12abc"}, int64(12)},
		{"cast int rounds", "mysql_cast_int", []driver.Value{"2.5"}, int64(3)},
		{"regexp ci", "mysql_regexp", []driver.Value{"Hello", "^h"}, int64(1)},
		{"timestampdiff month", "mysql_timestampdiff", []driver.Value{"month", "2024-01-31", "2024-02-29"}, int64(0)},
		{"datediff", "mysql_datediff", []driver.Value{"2024-03-01 23:00:00", "2024-02-28"}, int64(2)},
		{"to_days", "mysql_to_days", []driver.Value{"1999-12-31"}, int64(730484)},
		{"from_days", "mysql_from_days", []driver.Value{int64(730484)}, "1999-12-31"},
		{"str_to_date", "mysql_str_to_date", []driver.Value{"May 1, 2013", "%M %d,%Y"}, "2013-05-01"},
		{"year of zero date", "mysql_year", []driver.Value{"0000-00-00"}, int64(0)},
		{"dayofweek null on zero", "mysql_dayofweek", []driver.Value{"0000-00-00"}, nil},
		{"format", "mysql_format", []driver.Value{-1234.5, int64(1)}, "-1,234.5"},
		{"hex of number", "mysql_hex", []driver.Value{int64(255)}, "FF"},
		{"inet_aton", "mysql_inet_aton", []driver.Value{"10.0.5.9"}, int64(167773449)},
		{"mod by zero", "mysql_mod", []driver.Value{int64(5), int64(0)}, nil},
		{"floor keeps int", "mysql_floor", []driver.Value{int64(5)}, int64(5)},
		{"floor of float", "mysql_floor", []driver.Value{-1.5}, -2.0},
		{"lpad", "mysql_lpad", []driver.Value{"hi", int64(5), "ab"}, "abahi"},
		{"rpad", "mysql_rpad", []driver.Value{"hi", int64(5), "ab"}, "hiaba"},
		{"lpad truncates", "mysql_lpad", []driver.Value{"hello", int64(3), "x"}, "hel"},
		{"lpad characters not bytes", "mysql_lpad", []driver.Value{"é", int64(3), "ñ"}, "ññé"},
		{"rpad to nothing", "mysql_rpad", []driver.Value{"x", int64(0), "y"}, ""},
		{"rpad empty padding", "mysql_rpad", []driver.Value{"x", int64(3), ""}, nil},
		{"repeat", "mysql_repeat", []driver.Value{"ab", int64(3)}, "ababab"},
		{"space", "mysql_space", []driver.Value{int64(2)}, "  "},
		{"regexp_replace literal", "mysql_regexp_replace", []driver.Value{"a.b", "[.]", "$1"}, "a$1b"},
		{"left characters", "mysql_left", []driver.Value{"héllo", int64(2)}, "hé"},
		{"right characters", "mysql_right", []driver.Value{"héllo", int64(4)}, "éllo"},
		{"left past the end", "mysql_left", []driver.Value{"ab", int64(5)}, "ab"},
		{"right of none", "mysql_right", []driver.Value{"ab", int64(-1)}, ""},
		{"left of null", "mysql_left", []driver.Value{nil, int64(1)}, nil},
		{"week of zero date", "mysql_week", []driver.Value{"0000-00-00"}, nil},
		{"yearweek default mode", "mysql_yearweek", []driver.Value{"2022-01-01"}, int64(202152)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := call(t, tt.fn, tt.args...); got != tt.want {
				t.Errorf("%s%v = %#v, want %#v", tt.fn, tt.args, got, tt.want)
			}
		})
	}
}

func TestDefaultVariables(t *testing.T) {
	v := sqlxlate.DefaultVariables()
	for _, k := range []string{"version", "sql_mode", "character_set_client", "collation_connection", "autocommit", "max_allowed_packet", "time_zone", "lower_case_table_names"} {
		if _, ok := v[k]; !ok {
			t.Errorf("missing variable %s", k)
		}
	}
	if !strings.HasPrefix(v["version"], "8.0") {
		t.Errorf("version %q: WordPress and PHP apps test for MySQL 8", v["version"])
	}
}

// TestPlanKinds checks what the wire front relies on for routing and transactions.
func TestPlanKinds(t *testing.T) {
	s := newSession(t)
	s.mustRun("CREATE TABLE t (id int NOT NULL AUTO_INCREMENT PRIMARY KEY, v varchar(10))")
	tests := []struct {
		name, sql    string
		kind         sqlxlate.Kind
		write, schem bool
		params       int
	}{
		{"select", "SELECT * FROM t WHERE id = ?", sqlxlate.KindQuery, false, false, 1},
		{"insert", "INSERT INTO t (v) VALUES (?), (?)", sqlxlate.KindExec, true, false, 2},
		{"update", "UPDATE t SET v = 'x'", sqlxlate.KindExec, true, false, 0},
		{"delete", "DELETE FROM t LIMIT 1", sqlxlate.KindExec, true, false, 0},
		{"create", "CREATE TABLE u (a int)", sqlxlate.KindExec, true, true, 0},
		{"alter", "ALTER TABLE t ADD KEY v (v)", sqlxlate.KindExec, true, true, 0},
		{"drop", "DROP TABLE IF EXISTS t", sqlxlate.KindExec, true, true, 0},
		{"begin", "START TRANSACTION", sqlxlate.KindBegin, false, false, 0},
		{"begin work", "BEGIN", sqlxlate.KindBegin, false, false, 0},
		{"commit", "COMMIT", sqlxlate.KindCommit, false, false, 0},
		{"rollback", "ROLLBACK", sqlxlate.KindRollback, false, false, 0},
		{"savepoint", "SAVEPOINT a", sqlxlate.KindSavepoint, false, false, 0},
		{"rollback to", "ROLLBACK TO SAVEPOINT a", sqlxlate.KindRollbackTo, false, false, 0},
		{"release", "RELEASE SAVEPOINT a", sqlxlate.KindRelease, false, false, 0},
		{"set", "SET NAMES utf8mb4", sqlxlate.KindSet, false, false, 0},
		{"use", "USE wordpress", sqlxlate.KindUse, false, false, 0},
		{"show", "SHOW TABLES", sqlxlate.KindResult, false, false, 0},
		{"lock", "LOCK TABLES t READ", sqlxlate.KindNoop, false, false, 0},
		{"flush", "FLUSH PRIVILEGES", sqlxlate.KindNoop, false, false, 0},
	}
	ctx := context.Background()
	s.mustRun("CREATE TABLE rel (a int NOT NULL, b int NOT NULL, PRIMARY KEY (a, b))")
	for _, c := range []struct {
		sql  string
		want bool
	}{{"INSERT INTO t (v) VALUES ('x')", true}, {"INSERT INTO rel VALUES (1, 2)", false}, {"REPLACE INTO rel VALUES (1, 2)", false}, {"INSERT INTO tmp_unknown VALUES (1)", true}} {
		p, err := s.tr.Translate(ctx, c.sql, s.cat)
		if err != nil {
			t.Fatal(err)
		}
		if p.AutoIncrement != c.want {
			t.Errorf("%s: AutoIncrement %v, want %v", c.sql, p.AutoIncrement, c.want)
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := s.tr.Translate(ctx, tt.sql, s.cat)
			if err != nil {
				t.Fatal(err)
			}
			if p.Kind != tt.kind || p.Write != tt.write || p.SchemaChange != tt.schem || p.Params != tt.params {
				t.Errorf("%s: kind %v write %v schema %v params %d; want %v %v %v %d", tt.sql, p.Kind, p.Write, p.SchemaChange, p.Params, tt.kind, tt.write, tt.schem, tt.params)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	s := newSession(t)
	tests := []struct {
		name, sql string
		code      int
		mention   string
	}{
		{"syntax", "SELEC 1", 1064, "syntax"},
		{"empty", "  ", 1065, "empty"},
		{"fulltext", "SELECT * FROM t WHERE MATCH (a) AGAINST ('x')", 1235, "MATCH"},
		{"view", "CREATE VIEW v AS SELECT 1", 1235, "views"},
		{"describe missing", "DESCRIBE nosuch", 1146, "nosuch"},
		{"hidden table", "SELECT * FROM _ephpm_schema", 1146, "_ephpm_schema"},
		{"sqlite master", "SELECT * FROM sqlite_master", 1146, "sqlite_master"},
		{"pragma vtable", "SELECT * FROM pragma_database_list", 1146, "pragma_database_list"},
		{"load_extension", "SELECT load_extension('/tmp/x.so')", 1305, "load_extension"},
		{"partial DDL", "CREATE TABLE t (a int) blah blah", 1064, "syntax"},
		{"auto_increment not key", "CREATE TABLE t (a int AUTO_INCREMENT, b int, PRIMARY KEY (b))", 1235, "AUTO_INCREMENT"},
		{"info schema view", "SELECT * FROM information_schema.ROUTINES", 1146, "ROUTINES"},
		{"column count", "INSERT INTO t (a, b) VALUES (1)", 1136, "count"},
		{"attach", "ATTACH DATABASE '/etc/passwd' AS x", 1064, "syntax"},
		{"pragma", "PRAGMA database_list", 1064, "syntax"},
		{"other database", "SELECT * FROM mysql.user", 1044, "mysql"},
		{"other database same table name", "SELECT * FROM `other.site`.t", 1044, "other.site"},
		{"other database insert", "INSERT INTO other.t (a) VALUES (1)", 1044, "other"},
		{"other database update", "UPDATE other.t SET a = 1", 1044, "other"},
		{"other database delete", "DELETE FROM other.t", 1044, "other"},
		{"other database join", "SELECT * FROM t JOIN other.t AS o ON o.a = t.a", 1044, "other"},
		{"other database create", "CREATE TABLE other.n (a int)", 1044, "other"},
		{"other database drop", "DROP TABLE other.t", 1044, "other"},
		{"other database alter", "ALTER TABLE other.t ADD COLUMN z int", 1044, "other"},
		{"other database truncate", "TRUNCATE TABLE other.t", 1044, "other"},
		{"other database rename", "RENAME TABLE t TO other.t2", 1044, "other"},
		{"other database alter rename", "ALTER TABLE t RENAME TO other.t2", 1044, "other"},
		{"other database subquery", "SELECT (SELECT COUNT(*) FROM other.t) AS n", 1044, "other"},
		{"other database describe", "DESCRIBE other.t", 1044, "other"},
		{"other database show columns", "SHOW COLUMNS FROM t FROM other", 1044, "other"},
		{"dbstat", "SELECT * FROM dbstat", 1146, "dbstat"},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.tr.Translate(ctx, tt.sql, s.cat)
			var xe *sqlxlate.Error
			if !errors.As(err, &xe) {
				t.Fatalf("%s: err %v, want *Error %d", tt.sql, err, tt.code)
			}
			if xe.Code != tt.code || !strings.Contains(strings.ToLower(xe.Message), strings.ToLower(tt.mention)) {
				t.Errorf("%s: %v; want code %d mentioning %q", tt.sql, xe, tt.code, tt.mention)
			}
			if xe.State == "" {
				t.Errorf("%s: no SQLSTATE", tt.sql)
			}
		})
	}
}

func TestSQLiteError(t *testing.T) {
	tests := []struct {
		name, msg string
		code      int
	}{
		{"no table", "SQL logic error: no such table: wp_foo (1)", 1146},
		{"no column", "SQL logic error: no such column: bar (1)", 1054},
		{"unique", "constraint failed: UNIQUE constraint failed: t.name (2067)", 1062},
		{"pk", "constraint failed: UNIQUE constraint failed: t.id (1555)", 1062},
		{"not null", "constraint failed: NOT NULL constraint failed: t.name (1299)", 1048},
		{"busy", "database is locked (5) (SQLITE_BUSY)", 1205},
		{"function", "SQL logic error: no such function: inet6_aton (1)", 1305},
		{"other", "disk I/O error", 1105},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sqlxlate.SQLiteError(errors.New(tt.msg), "wp"); got.Code != tt.code {
				t.Errorf("SQLiteError(%q) = %v, want %d", tt.msg, got, tt.code)
			}
		})
	}
	if sqlxlate.SQLiteError(nil, "wp") != nil {
		t.Error("nil error must map to nil")
	}
}

func TestPlanCache(t *testing.T) {
	s := newSession(t)
	s.mustRun("CREATE TABLE t (a int)")
	ctx := context.Background()
	p1, err := s.tr.Translate(ctx, "SELECT a FROM t", s.cat)
	if err != nil {
		t.Fatal(err)
	}
	p2, _ := s.tr.Translate(ctx, "SELECT a FROM t", s.cat)
	if p1 != p2 {
		t.Error("second translation of the same SQL was not served from the cache")
	}
	s.cat.Invalidate()
	p3, _ := s.tr.Translate(ctx, "SELECT a FROM t", s.cat)
	if p3 == p1 {
		t.Error("a schema change must not reuse plans of the previous version")
	}
	// SHOW COLUMNS reflects ALTER TABLE because the version changed
	s.mustRun("ALTER TABLE t ADD COLUMN b int")
	r := s.mustRun("SHOW COLUMNS FROM t")
	if len(r.rows) != 2 {
		t.Errorf("SHOW COLUMNS after ALTER: %d rows, want 2", len(r.rows))
	}
	// a small cache evicts and still answers
	tr := sqlxlate.NewTranslator(2)
	for _, q := range []string{"SELECT 1", "SELECT 2", "SELECT 3", "SELECT 1"} {
		if _, err := tr.Translate(ctx, q, s.cat); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTranslateConcurrent(t *testing.T) {
	s := newSession(t)
	s.mustRun("CREATE TABLE t (id int NOT NULL PRIMARY KEY, v text)")
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				q := []string{"SELECT * FROM t WHERE id = ?", "SHOW COLUMNS FROM t", "UPDATE t SET v = 'x' WHERE id = 1", "SELECT COUNT(*) FROM t"}[(g+i)%4]
				if _, err := s.tr.Translate(ctx, q, s.cat); err != nil {
					errs <- err
					return
				}
				if i%50 == 0 {
					s.cat.Invalidate()
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestCatalogVersionsNeverRepeat: a database reopened (a new catalog)
// must not reuse plans cached for its previous schema.
func TestCatalogVersionsNeverRepeat(t *testing.T) {
	a := sqlxlate.NewCatalog(nil, "site")
	b := sqlxlate.NewCatalog(nil, "site")
	b.Invalidate()
	c := sqlxlate.NewCatalog(nil, "site")
	if a.Version() == c.Version() || b.Version() == c.Version() || a.Version() == b.Version() {
		t.Fatalf("versions repeat: %d %d %d", a.Version(), b.Version(), c.Version())
	}
}
