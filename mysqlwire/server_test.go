package mysqlwire_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ephpm/ephpm/mysqlwire"
	"github.com/ephpm/ephpm/sqlite"
)

const (
	testUser     = "wp"
	testPassword = "s3cret!"
	testDB       = "wordpress"
)

type testServer struct {
	srv    *mysqlwire.Server
	addr   string
	socket string
	db     *sqlite.DB
	opens  *int
}

type option func(*mysqlwire.Config, *sqlite.Config)

func withTranslator(tr mysqlwire.Translator) option {
	return func(c *mysqlwire.Config, _ *sqlite.Config) { c.Translator = tr }
}

func withStatementTimeout(d time.Duration) option {
	return func(c *mysqlwire.Config, _ *sqlite.Config) { c.StatementTimeout = d }
}

func withMetrics(r prometheus.Registerer) option {
	return func(c *mysqlwire.Config, _ *sqlite.Config) { c.Metrics = r }
}

func withMaxLength(n int) option {
	return func(_ *mysqlwire.Config, c *sqlite.Config) { c.MaxLength = n }
}

func withLockTimeout(d time.Duration) option {
	return func(_ *mysqlwire.Config, c *sqlite.Config) { c.LockTimeout = d }
}

// startServer runs a server on 127.0.0.1:0 and a unix socket in a temp dir
// with one account (testUser/testPassword → testDB).
func startServer(t testing.TB, opts ...option) *testServer {
	t.Helper()
	dir := t.TempDir()
	scfg := sqlite.Config{Path: filepath.Join(dir, "site.db"), Functions: mysqlwire.SQLiteFunctions()}
	cfg := mysqlwire.Config{
		Listen:     "127.0.0.1:0",
		Socket:     filepath.Join(dir, "mysql.sock"),
		Translator: passthrough{},
		Logger:     slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	for _, o := range opts {
		o(&cfg, &scfg)
	}
	db, err := sqlite.Open(context.Background(), scfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ts := &testServer{db: db, socket: cfg.Socket, opens: new(int)}
	var mu sync.Mutex
	cfg.Sites = mysqlwire.StaticDirectory{testUser: {
		User: testUser, Password: testPassword, Database: testDB,
		Open: func(context.Context) (*sqlite.DB, func(), error) {
			mu.Lock()
			*ts.opens++
			mu.Unlock()
			return db, func() {
				mu.Lock()
				*ts.opens--
				mu.Unlock()
			}, nil
		},
	}}
	srv, err := mysqlwire.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ts.srv = srv
	ts.addr = srv.Addr().String()
	return ts
}

func (ts *testServer) dsn(params string) string {
	return fmt.Sprintf("%s:%s@tcp(%s)/%s?%s", testUser, testPassword, ts.addr, testDB, params)
}

func (ts *testServer) open(t testing.TB, params string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", ts.dsn(params))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Ping(); err != nil {
		t.Fatalf("ping: %v", err)
	}
	return db
}

// session opens one connection, one MySQL session, closed at the end of
// the test.
func (ts *testServer) session(t testing.TB) *sql.Conn {
	t.Helper()
	conn, err := ts.open(t, "").Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func mysqlCode(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

func TestNewRejectsRemoteListen(t *testing.T) {
	dir := mysqlwire.StaticDirectory{}
	tests := []struct {
		name   string
		listen string
		remote bool
		ok     bool
	}{
		{"loopback v4", "127.0.0.1:3306", false, true},
		{"loopback v6", "[::1]:3306", false, true},
		{"localhost", "localhost:3306", false, true},
		{"wildcard", "0.0.0.0:3306", false, false},
		{"empty host", ":3306", false, false},
		{"public ip", "192.0.2.1:3306", false, false},
		{"wildcard allowed", "0.0.0.0:3306", true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := mysqlwire.New(mysqlwire.Config{Listen: tc.listen, AllowRemote: tc.remote, Sites: dir})
			if (err == nil) != tc.ok {
				t.Errorf("New(%q, remote=%v) err = %v, want ok=%v", tc.listen, tc.remote, err, tc.ok)
			}
		})
	}
}

func TestAuth(t *testing.T) {
	ts := startServer(t)
	tests := []struct {
		name string
		dsn  string
		code uint16
	}{
		{"good", ts.dsn(""), 0},
		{"bad password", fmt.Sprintf("%s:wrong@tcp(%s)/%s", testUser, ts.addr, testDB), 1045},
		{"unknown user", fmt.Sprintf("nobody:%s@tcp(%s)/%s", testPassword, ts.addr, testDB), 1045},
		{"empty password", fmt.Sprintf("%s@tcp(%s)/%s", testUser, ts.addr, testDB), 1045},
		{"other database", fmt.Sprintf("%s:%s@tcp(%s)/otherdb", testUser, testPassword, ts.addr), 1044},
		{"no database", fmt.Sprintf("%s:%s@tcp(%s)/", testUser, testPassword, ts.addr), 0},
		{"unix socket", fmt.Sprintf("%s:%s@unix(%s)/%s", testUser, testPassword, ts.socket, testDB), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db, err := sql.Open("mysql", tc.dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			err = db.Ping()
			if got := mysqlCode(err); got != tc.code || (tc.code == 0 && err != nil) {
				t.Errorf("ping: %v (code %d), want code %d", err, got, tc.code)
			}
		})
	}
}

func TestQueryExecAndMetadata(t *testing.T) {
	ts := startServer(t)
	db := ts.open(t, "")
	mustExec(t, db, "CREATE TABLE posts (id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT NOT NULL, views INTEGER, score REAL, body BLOB)")
	res, err := db.Exec("INSERT INTO posts (title, views, score) VALUES ('hello', 3, 1.5), ('world', 4, 2.25)")
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 2 {
		t.Errorf("RowsAffected = %d, want 2", n)
	}
	if id, _ := res.LastInsertId(); id != 1 {
		t.Errorf("LastInsertId of a 2-row insert = %d, want 1 (MySQL reports the first)", id)
	}
	res, err = db.Exec("INSERT INTO posts (title) VALUES (?)", "third")
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := res.LastInsertId(); id != 3 {
		t.Errorf("LastInsertId = %d, want 3", id)
	}
	res, err = db.Exec("UPDATE posts SET views = views + 1 WHERE id <= 2")
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 2 {
		t.Errorf("UPDATE RowsAffected = %d, want 2", n)
	}
	if id, _ := res.LastInsertId(); id != 0 {
		t.Errorf("UPDATE LastInsertId = %d, want 0", id)
	}

	rows, err := db.Query("SELECT id, title, views, score, views * 2 AS dbl, NULL AS nada FROM posts WHERE id = ?", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cts, _ := rows.ColumnTypes()
	var names []string
	for _, ct := range cts {
		names = append(names, ct.Name())
	}
	if got, want := strings.Join(names, ","), "id,title,views,score,dbl,nada"; got != want {
		t.Errorf("columns = %s, want %s", got, want)
	}
	if !rows.Next() {
		t.Fatal("no row")
	}
	var (
		id, views, dbl int64
		title          string
		score          float64
		nothing        sql.NullString
	)
	if err := rows.Scan(&id, &title, &views, &score, &dbl, &nothing); err != nil {
		t.Fatal(err)
	}
	if id != 2 || title != "world" || views != 5 || score != 2.25 || dbl != 10 || nothing.Valid {
		t.Errorf("row = %d %q %d %v %d %v", id, title, views, score, dbl, nothing)
	}
}

func TestPreparedTypesBinaryProtocol(t *testing.T) {
	ts := startServer(t)
	// interpolateParams=false (the default) makes the driver use
	// COM_STMT_PREPARE/EXECUTE: binary rows.
	db := ts.open(t, "")
	mustExec(t, db, "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER, f REAL, s TEXT, b BLOB, d DATETIME)")
	_, err := db.Exec("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)", 1, int64(1)<<40, 3.5, "héllo 🎉", []byte{0, 1, 2, 0xff}, "2024-02-29 13:14:15")
	if err != nil {
		t.Fatal(err)
	}
	// Dynamic typing: a text value in an INTEGER column must not break
	// the binary encoding of the whole column.
	mustExec(t, db, "INSERT INTO t (id, n) VALUES (2, 'not a number')")
	stmt, err := db.Prepare("SELECT n, f, s, b, d, n + 1 FROM t WHERE id = ?")
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close()
	var (
		n, s, d string
		f       float64
		b       []byte
		plus    int64
	)
	if err := stmt.QueryRow(1).Scan(&n, &f, &s, &b, &d, &plus); err != nil {
		t.Fatal(err)
	}
	if n != "1099511627776" || f != 3.5 || s != "héllo 🎉" || string(b) != "\x00\x01\x02\xff" || d != "2024-02-29 13:14:15" || plus != 1<<40+1 {
		t.Errorf("got n=%q f=%v s=%q b=%x d=%q plus=%d", n, f, s, b, d, plus)
	}
	if err := stmt.QueryRow(2).Scan(&n, new(sql.NullFloat64), new(sql.NullString), new([]byte), new(sql.NullString), new(sql.NullInt64)); err != nil {
		t.Fatal(err)
	}
	if n != "not a number" {
		t.Errorf("text in INTEGER column = %q", n)
	}
}

func TestTransactions(t *testing.T) {
	ts := startServer(t)
	db := ts.open(t, "")
	mustExec(t, db, "CREATE TABLE acct (id INTEGER PRIMARY KEY, bal INTEGER)")
	mustExec(t, db, "INSERT INTO acct VALUES (1, 100), (2, 0)")
	ctx := context.Background()

	t.Run("commit and read own writes", func(t *testing.T) {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec("UPDATE acct SET bal = bal - 10 WHERE id = 1"); err != nil {
			t.Fatal(err)
		}
		var bal int
		if err := tx.QueryRow("SELECT bal FROM acct WHERE id = 1").Scan(&bal); err != nil || bal != 90 {
			t.Errorf("inside tx: bal = %d, %v; want 90", bal, err)
		}
		if err := db.QueryRow("SELECT bal FROM acct WHERE id = 1").Scan(&bal); err != nil || bal != 100 {
			t.Errorf("other connection during tx: bal = %d, %v; want 100", bal, err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow("SELECT bal FROM acct WHERE id = 1").Scan(&bal); err != nil || bal != 90 {
			t.Errorf("after commit: bal = %d, %v; want 90", bal, err)
		}
	})
	t.Run("rollback", func(t *testing.T) {
		tx, _ := db.BeginTx(ctx, nil)
		if _, err := tx.Exec("UPDATE acct SET bal = 0"); err != nil {
			t.Fatal(err)
		}
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
		var bal int
		db.QueryRow("SELECT bal FROM acct WHERE id = 1").Scan(&bal)
		if bal != 90 {
			t.Errorf("after rollback: bal = %d, want 90", bal)
		}
	})
	t.Run("savepoints", func(t *testing.T) {
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for _, q := range []string{"BEGIN", "UPDATE acct SET bal = 1 WHERE id = 2", "SAVEPOINT sp1",
			"UPDATE acct SET bal = 2 WHERE id = 2", "ROLLBACK TO SAVEPOINT sp1", "RELEASE SAVEPOINT sp1", "COMMIT"} {
			if _, err := conn.ExecContext(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		var bal int
		db.QueryRow("SELECT bal FROM acct WHERE id = 2").Scan(&bal)
		if bal != 1 {
			t.Errorf("after savepoint rollback: bal = %d, want 1", bal)
		}
		_, err = conn.ExecContext(ctx, "RELEASE SAVEPOINT nope")
		if mysqlCode(err) != 1305 {
			t.Errorf("release unknown savepoint: %v, want 1305", err)
		}
	})
	t.Run("autocommit 0", func(t *testing.T) {
		conn, _ := db.Conn(ctx)
		defer conn.Close()
		for _, q := range []string{"SET autocommit=0", "UPDATE acct SET bal = 500 WHERE id = 2"} {
			if _, err := conn.ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		var bal int
		db.QueryRow("SELECT bal FROM acct WHERE id = 2").Scan(&bal)
		if bal == 500 {
			t.Error("write with autocommit=0 visible before COMMIT")
		}
		conn.ExecContext(ctx, "ROLLBACK")
		conn.ExecContext(ctx, "SET autocommit=1")
		db.QueryRow("SELECT bal FROM acct WHERE id = 2").Scan(&bal)
		if bal != 1 {
			t.Errorf("after rollback with autocommit=0: bal = %d, want 1", bal)
		}
	})
}

func TestConcurrentWritersSerialised(t *testing.T) {
	ts := startServer(t)
	db := ts.open(t, "")
	db.SetMaxOpenConns(8)
	mustExec(t, db, "CREATE TABLE c (id INTEGER PRIMARY KEY, n INTEGER)")
	mustExec(t, db, "INSERT INTO c VALUES (1, 0)")
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				tx, err := db.Begin()
				if err != nil {
					errs <- err
					return
				}
				var n int
				if _, err := tx.Exec("UPDATE c SET n = n + 1 WHERE id = 1"); err != nil {
					tx.Rollback()
					errs <- err
					return
				}
				if err := tx.QueryRow("SELECT n FROM c WHERE id = 1").Scan(&n); err != nil {
					tx.Rollback()
					errs <- err
					return
				}
				if err := tx.Commit(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent writer failed: %v", err)
	}
	var n int
	db.QueryRow("SELECT n FROM c WHERE id = 1").Scan(&n)
	if n != 80 {
		t.Errorf("n = %d, want 80 (lost updates)", n)
	}
}

func TestLockWaitTimeout1205(t *testing.T) {
	ts := startServer(t, withLockTimeout(300*time.Millisecond))
	db := ts.open(t, "")
	mustExec(t, db, "CREATE TABLE l (id INTEGER PRIMARY KEY)")
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec("INSERT INTO l VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec("INSERT INTO l VALUES (2)")
	if mysqlCode(err) != 1205 {
		t.Fatalf("second writer: %v, want 1205", err)
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) && string(me.SQLState[:]) != "HY000" {
		t.Errorf("SQLSTATE = %s, want HY000", me.SQLState)
	}
}

func TestErrorMapping(t *testing.T) {
	ts := startServer(t)
	db := ts.open(t, "")
	mustExec(t, db, "CREATE TABLE u (id INTEGER PRIMARY KEY, email TEXT UNIQUE, name TEXT NOT NULL)")
	mustExec(t, db, "INSERT INTO u VALUES (1, 'a@x', 'a')")
	tests := []struct {
		name  string
		query string
		code  uint16
		state string
	}{
		{"duplicate unique", "INSERT INTO u VALUES (2, 'a@x', 'b')", 1062, "23000"},
		{"duplicate primary", "INSERT INTO u VALUES (1, 'b@x', 'b')", 1062, "23000"},
		{"not null", "INSERT INTO u (id, email) VALUES (3, 'c@x')", 1048, "23000"},
		{"no table", "SELECT * FROM missing", 1146, "42S02"},
		{"no column", "SELECT nope FROM u", 1054, "42S22"},
		{"table exists", "CREATE TABLE u (x INTEGER)", 1050, "42S01"},
		{"syntax", "SELECT FROM WHERE", 1064, "42000"},
		{"attach denied", "ATTACH '/tmp/ephpm-wire-attach.db' AS x", 1227, "42000"},
		{"pragma denied", "PRAGMA journal_mode=DELETE", 1227, "42000"},
		{"load_extension denied", "SELECT load_extension('/tmp/x.so')", 1227, "42000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := db.Exec(tc.query)
			var me *mysql.MySQLError
			if !errors.As(err, &me) {
				t.Fatalf("%s: err = %v, want MySQL error %d", tc.query, err, tc.code)
			}
			if me.Number != tc.code || string(me.SQLState[:]) != tc.state {
				t.Errorf("%s: got %d/%s %q, want %d/%s", tc.query, me.Number, me.SQLState, me.Message, tc.code, tc.state)
			}
		})
	}
	if _, err := os.Stat("/tmp/ephpm-wire-attach.db"); err == nil {
		t.Error("ATTACH created a file")
	}
	// The connection still works after all those errors.
	var n int
	if err := db.QueryRow("SELECT count(*) FROM u").Scan(&n); err != nil || n != 1 {
		t.Errorf("after errors: %d, %v", n, err)
	}
}

func TestSessionFunctions(t *testing.T) {
	ts := startServer(t)
	db := ts.open(t, "")
	db.SetMaxOpenConns(1)
	mustExec(t, db, "CREATE TABLE s (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT)")
	mustExec(t, db, "INSERT INTO s (v) VALUES ('a'), ('b'), ('c')")
	var id int64
	if err := db.QueryRow("SELECT LAST_INSERT_ID()").Scan(&id); err != nil || id != 1 {
		t.Errorf("LAST_INSERT_ID() = %d, %v; want 1", id, err)
	}
	mustExec(t, db, "UPDATE s SET v = 'z' WHERE id > 1")
	var rc int64
	if err := db.QueryRow("SELECT ROW_COUNT()").Scan(&rc); err != nil || rc != 2 {
		t.Errorf("ROW_COUNT() = %d, %v; want 2", rc, err)
	}
	rows, err := db.Query("SELECT v FROM s")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
	}
	rows.Close()
	var fr int64
	if err := db.QueryRow("SELECT FOUND_ROWS()").Scan(&fr); err != nil || fr != 3 {
		t.Errorf("FOUND_ROWS() = %d, %v; want 3", fr, err)
	}
	var name string
	if err := db.QueryRow("SELECT DATABASE()").Scan(&name); err != nil || name != testDB {
		t.Errorf("DATABASE() = %q, %v", name, err)
	}
	mustExec(t, db, "SET @x = 40 + 2")
	var x int64
	if err := db.QueryRow("SELECT @x").Scan(&x); err != nil || x != 42 {
		t.Errorf("@x = %d, %v; want 42", x, err)
	}
}

func TestCloseEndsConnectionsAndRollsBack(t *testing.T) {
	ts := startServer(t)
	db := ts.open(t, "")
	mustExec(t, db, "CREATE TABLE k (id INTEGER PRIMARY KEY)")
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("INSERT INTO k VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { ts.srv.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	if *ts.opens != 0 {
		t.Errorf("%d site database references still held after Close", *ts.opens)
	}
	// The transaction was rolled back and the writer is free again.
	w, err := ts.db.AcquireWriter(context.Background())
	if err != nil {
		t.Fatalf("writer still held after Close: %v", err)
	}
	var n int
	w.QueryRowContext(context.Background(), "SELECT count(*) FROM k").Scan(&n)
	w.Release(context.Background())
	if n != 0 {
		t.Errorf("uncommitted row survived Close: %d rows", n)
	}
}

func mustExec(t testing.TB, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func TestTemporaryTables(t *testing.T) {
	ts := startServer(t, withTranslator(nil))
	db := ts.open(t, "")
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"CREATE TEMPORARY TABLE tmp_ids (id INT)", "INSERT INTO tmp_ids VALUES (1), (2)"} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var n int
	if err := conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM tmp_ids").Scan(&n); err != nil || n != 2 {
		t.Fatalf("own temp table: %d rows, %v; want 2", n, err)
	}
	// Prepared statements see it too.
	if err := conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM tmp_ids WHERE id > ?", 1).Scan(&n); err != nil || n != 1 {
		t.Fatalf("prepared on temp table: %d rows, %v; want 1", n, err)
	}
	conn.Close()
	db.Close()
	// Once the session is gone its temp table is too: it lived on the
	// shared writer connection, where the next session would see it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		w, err := ts.db.AcquireWriter(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var left int
		err = w.QueryRowContext(ctx, "SELECT count(*) FROM temp.sqlite_master WHERE name = 'tmp_ids'").Scan(&left)
		w.Release(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("temp table outlived its session")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A temporary table made by CREATE TEMPORARY TABLE … AS SELECT lives on
// the writer too: the session's next statements must see it (they went to
// the reader pool: 1146).
func TestTemporaryTableAsSelect(t *testing.T) {
	conn := startServer(t, withTranslator(nil)).session(t)
	ctx := context.Background()
	if _, err := conn.ExecContext(ctx, "CREATE TEMPORARY TABLE tmp_sel AS SELECT 1 AS a UNION ALL SELECT 2"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM tmp_sel").Scan(&n); err != nil || n != 2 {
		t.Fatalf("temp table from SELECT: %d rows, %v; want 2", n, err)
	}
}

// A SET value is kept as the text the SQL functions make of it: a float
// reads back as CONCAT prints it.
func TestSetValueText(t *testing.T) {
	conn := startServer(t, withTranslator(nil)).session(t)
	ctx := context.Background()
	for _, v := range []string{"28800", "0.5", "1e20", "'on'"} {
		if _, err := conn.ExecContext(ctx, "SET @@session.ephpm_test = "+v); err != nil {
			t.Fatal(err)
		}
		var got, want string
		if err := conn.QueryRowContext(ctx, "SELECT @@ephpm_test, CONCAT("+v+")").Scan(&got, &want); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("SET @@ephpm_test = %s: reads back %q, CONCAT gives %q", v, got, want)
		}
	}
}

func TestPoolAccountOpensLazilyAndReleases(t *testing.T) {
	pool := sqlite.NewPool(sqlite.PoolConfig{IdleClose: 50 * time.Millisecond})
	defer pool.Close()
	dir := t.TempDir()
	srv, err := mysqlwire.New(mysqlwire.Config{
		Listen: "127.0.0.1:0",
		Sites: mysqlwire.StaticDirectory{
			"alice": mysqlwire.PoolAccount("alice", "pa", "alice_db", pool, filepath.Join(dir, "alice.db")),
			"bob":   mysqlwire.PoolAccount("bob", "pb", "bob_db", pool, filepath.Join(dir, "bob.db")),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if pool.Len() != 0 {
		t.Fatalf("%d databases open before any connection", pool.Len())
	}
	open := func(user, pass, db string) *sql.DB {
		d, err := sql.Open("mysql", fmt.Sprintf("%s:%s@tcp(%s)/%s", user, pass, srv.Addr(), db))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	alice := open("alice", "pa", "alice_db")
	mustExec(t, alice, "CREATE TABLE secrets (v VARCHAR(10))")
	mustExec(t, alice, "INSERT INTO secrets VALUES ('alice')")
	bob := open("bob", "pb", "bob_db")
	// Bob cannot see Alice's tables, nor switch to her database.
	if _, err := bob.Exec("SELECT * FROM secrets"); mysqlCode(err) != 1146 {
		t.Errorf("bob reading alice's table: %v, want 1146", err)
	}
	if _, err := bob.Exec("USE alice_db"); mysqlCode(err) != 1044 {
		t.Errorf("bob USE alice_db: %v, want 1044", err)
	}
	if got := pool.Len(); got != 2 {
		t.Errorf("%d databases open, want 2", got)
	}
	alice.Close()
	bob.Close()
	deadline := time.Now().Add(5 * time.Second)
	for pool.Len() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("databases not closed after their connections ended: %d open", pool.Len())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestDecimalScale(t *testing.T) {
	ts := startServer(t, withTranslator(nil))
	db := ts.open(t, "interpolateParams=true")
	mustExec(t, db, "CREATE TABLE prices (id INT PRIMARY KEY, price DECIMAL(10,2), rate DECIMAL(5,0))")
	mustExec(t, db, "INSERT INTO prices VALUES (1, 9.5, 3), (2, 10, 7), (3, NULL, NULL)")
	rows, err := db.Query("SELECT price, rate FROM prices ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var p, r sql.NullString
		if err := rows.Scan(&p, &r); err != nil {
			t.Fatal(err)
		}
		got = append(got, p.String+"/"+r.String)
	}
	if want := "9.50/3,10.00/7,/"; strings.Join(got, ",") != want {
		t.Errorf("decimals = %s, want %s", strings.Join(got, ","), want)
	}
}

func TestStatementTimeout(t *testing.T) {
	ts := startServer(t, withStatementTimeout(200*time.Millisecond))
	db := ts.open(t, "")
	start := time.Now()
	_, err := db.Exec("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c")
	if mysqlCode(err) != 3024 {
		t.Fatalf("runaway query: %v, want 3024", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("runaway query stopped after %v", el)
	}
	var one int
	if err := db.QueryRow("SELECT 1").Scan(&one); err != nil {
		t.Errorf("after timeout: %v", err)
	}
}

func TestReadOnlyDatabase1290(t *testing.T) {
	ts := startServer(t)
	db := ts.open(t, "")
	mustExec(t, db, "CREATE TABLE r (a INTEGER)")
	mustExec(t, db, "INSERT INTO r VALUES (1)")
	ts.db.SetReadOnly(true)
	if _, err := db.Exec("INSERT INTO r VALUES (2)"); mysqlCode(err) != 1290 {
		t.Errorf("write on a replica: %v, want 1290", err)
	}
	if _, err := db.Exec("BEGIN"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow("SELECT count(*) FROM r").Scan(&n); err != nil || n != 1 {
		t.Errorf("read on a replica: %d, %v", n, err)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	ts := startServer(t, withMetrics(reg))
	db := ts.open(t, "")
	db.SetMaxOpenConns(1)
	mustExec(t, db, "CREATE TABLE mt (a INTEGER)")
	db.Exec("SELECT * FROM nope")
	bad, _ := sql.Open("mysql", fmt.Sprintf("%s:wrong@tcp(%s)/%s", testUser, ts.addr, testDB))
	bad.Ping()
	bad.Close()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			got[mf.GetName()] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	for name, min := range map[string]float64{
		"ephpm_mysql_statements_total":    2,
		"ephpm_mysql_errors_total":        1,
		"ephpm_mysql_auth_failures_total": 1,
		"ephpm_mysql_connections_total":   2,
		"ephpm_mysql_connections":         1,
	} {
		if got[name] < min {
			t.Errorf("%s = %v, want >= %v", name, got[name], min)
		}
	}
}

func TestLargeValues(t *testing.T) {
	// Values up to 32 MB (the default limit is 16 MB, TestLengthLimit).
	ts := startServer(t, withTranslator(nil), withMaxLength(32<<20))
	for _, tc := range []struct {
		name, params string
		size         int
	}{
		{"text 2MB", "interpolateParams=true", 2 << 20},
		// Over 16 MB: the client splits the packet in several.
		{"prepared 17MB", "", 17 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := ts.open(t, tc.params+"&maxAllowedPacket=0")
			mustExec(t, db, "CREATE TABLE IF NOT EXISTS big (id INT PRIMARY KEY, body LONGTEXT)")
			mustExec(t, db, "DELETE FROM big")
			body := strings.Repeat("0123456789abcdef", tc.size/16)
			if _, err := db.Exec("INSERT INTO big VALUES (1, ?)", body); err != nil {
				t.Fatal(err)
			}
			var got string
			if err := db.QueryRow("SELECT body FROM big WHERE id = ?", 1).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != body {
				t.Errorf("got %d bytes back, want %d", len(got), len(body))
			}
		})
	}
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	dir := t.TempDir()
	pool := sqlite.NewPool(sqlite.PoolConfig{})
	srv, err := mysqlwire.New(mysqlwire.Config{
		Listen: "127.0.0.1:0", Socket: filepath.Join(dir, "s.sock"), Translator: passthrough{},
		Sites: mysqlwire.StaticDirectory{testUser: mysqlwire.PoolAccount(testUser, testPassword, testDB, pool, filepath.Join(dir, "x.db"))},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	db, _ := sql.Open("mysql", fmt.Sprintf("%s:%s@tcp(%s)/%s", testUser, testPassword, srv.Addr(), testDB))
	mustExec(t, db, "CREATE TABLE g (a INTEGER)")
	tx, _ := db.Begin()
	tx.Exec("INSERT INTO g VALUES (1)") // left open: Close must roll it back
	srv.Close()
	tx.Rollback() // client side only: the server is gone
	db.Close()
	pool.Close()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+1 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines before, %d after Close:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCloseAfterContextEnds: the server's context ending (SIGTERM in
// ephpm) and then Close must not wait for each other.
func TestCloseAfterContextEnds(t *testing.T) {
	dir := t.TempDir()
	pool := sqlite.NewPool(sqlite.PoolConfig{})
	defer pool.Close()
	srv, err := mysqlwire.New(mysqlwire.Config{
		Listen: "127.0.0.1:0", Translator: passthrough{},
		Sites: mysqlwire.StaticDirectory{testUser: mysqlwire.PoolAccount(testUser, testPassword, testDB, pool, filepath.Join(dir, "x.db"))},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	done := make(chan struct{})
	go func() { srv.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close hangs after the context ended")
	}
}
