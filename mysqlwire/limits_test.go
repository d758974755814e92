package mysqlwire_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ephpm/ephpm/internal/testutil"
	"github.com/ephpm/ephpm/mysqlwire"
	"github.com/ephpm/ephpm/sqlite"
)

// endlessSQL counts forever; endlessInsert writes forever.
const (
	endlessSQL    = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c"
	endlessInsert = "INSERT INTO lt (v) WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT x FROM c"
)

func mysqlErr(err error) *mysql.MySQLError {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me
	}
	return nil
}

func metric(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			return m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// A statement past the time limit gets MySQL's 3024, by the text and the
// binary protocol, also when its first row came at once; the connection
// goes on.
func TestStatementTimeout3024(t *testing.T) {
	reg := prometheus.NewRegistry()
	ts := startServer(t, withTranslator(nil), withStatementTimeout(300*time.Millisecond), withMetrics(reg))
	ctx := context.Background()
	for _, mode := range []struct{ name, params string }{{"text", "interpolateParams=true"}, {"prepared", ""}} {
		t.Run(mode.name, func(t *testing.T) {
			conn, err := ts.open(t, mode.params).Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			for _, q := range []string{
				endlessSQL + " WHERE ? = 1",
				"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT x FROM c WHERE x = ? OR x < 0",
			} {
				start := time.Now()
				rows, err := conn.QueryContext(ctx, q, 1)
				if err == nil {
					for rows.Next() {
					}
					err = rows.Err()
					rows.Close()
				}
				me := mysqlErr(err)
				if me == nil || me.Number != 3024 || string(me.SQLState[:]) != "HY000" ||
					me.Message != "Query execution was interrupted, maximum statement execution time exceeded" {
					t.Fatalf("%s: %v, want 3024 (HY000)", q, err)
				}
				if el := time.Since(start); el > 5*time.Second {
					t.Errorf("%s: stopped after %v", q, el)
				}
				var n int
				if err := conn.QueryRowContext(ctx, "SELECT ? + 1", 1).Scan(&n); err != nil || n != 2 {
					t.Fatalf("the connection after 3024: %d %v", n, err)
				}
			}
		})
	}
	if n := metric(t, reg, "ephpm_mysql_statement_timeouts_total"); n < 4 {
		t.Errorf("statement_timeouts_total = %v, want >= 4", n)
	}
	var mt string
	if err := ts.open(t, "").QueryRow("SELECT @@max_execution_time").Scan(&mt); err != nil || mt != "300" {
		t.Errorf("@@max_execution_time = %q (%v), want 300", mt, err)
	}
}

// A write interrupted inside a transaction: SQLite rolls the transaction
// back, the client is told, its session leaves the transaction and the
// writer is free for the others at once.
func TestStatementTimeoutInTransaction(t *testing.T) {
	ts := startServer(t, withTranslator(nil), withStatementTimeout(300*time.Millisecond), withLockTimeout(time.Second))
	ctx := context.Background()
	db := ts.open(t, "")
	mustExec(t, db, "CREATE TABLE lt (id INT AUTO_INCREMENT PRIMARY KEY, v BIGINT)")
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []string{"BEGIN", "INSERT INTO lt (v) VALUES (-1)"} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	_, err = conn.ExecContext(ctx, endlessInsert)
	if me := mysqlErr(err); me == nil || me.Number != 3024 || !strings.Contains(me.Message, "the transaction was rolled back") {
		t.Fatalf("endless insert in a transaction: %v", err)
	}
	other := ts.open(t, "")
	if _, err := other.Exec("INSERT INTO lt (v) VALUES (2)"); err != nil {
		t.Fatalf("another client's write after the interrupted transaction: %v", err)
	}
	if _, err := conn.ExecContext(ctx, "INSERT INTO lt (v) VALUES (3)"); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := other.QueryRow("SELECT GROUP_CONCAT(v ORDER BY v) FROM lt").Scan(&got); err != nil || got != "2,3" {
		t.Errorf("rows = %q (%v), want 2,3", got, err)
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		t.Errorf("COMMIT after the rolled back transaction: %v", err)
	}
}

// A client that goes away mid-statement (PHP killed, a dropped
// connection) has its statement interrupted within milliseconds, on TCP
// and on the unix socket, without a time limit.
func TestStatementInterruptedWhenClientGone(t *testing.T) {
	reg := prometheus.NewRegistry()
	ts := startServer(t, withTranslator(nil), withMetrics(reg))
	for i, dsn := range []string{
		ts.dsn("interpolateParams=true"),
		fmt.Sprintf("%s:%s@unix(%s)/%s", testUser, testPassword, ts.socket, testDB),
	} {
		db, err := sql.Open("mysql", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() {
			_, err := db.ExecContext(ctx, endlessSQL)
			errc <- err
		}()
		time.Sleep(200 * time.Millisecond)
		cancel() // the driver closes the connection
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("client side: %v", err)
		}
		testutil.RetryUntil(t, 3*time.Second, func() error {
			if n := metric(t, reg, "ephpm_mysql_client_gone_total"); n != float64(i+1) {
				return fmt.Errorf("client_gone_total = %v, want %d", n, i+1)
			}
			if n := metric(t, reg, "ephpm_mysql_connections"); n != 0 {
				return fmt.Errorf("%v connections still open", n)
			}
			return nil
		})
	}
}

// Close interrupts running statements: it returns promptly.
func TestCloseInterruptsStatements(t *testing.T) {
	ts := startServer(t, withTranslator(nil))
	db := ts.open(t, "")
	errc := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := db.Exec(endlessSQL)
			errc <- err
		}()
	}
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	ts.srv.Close()
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("Close took %v with statements running", el)
	}
	for range 2 {
		if err := <-errc; err == nil {
			t.Error("a statement interrupted by Close succeeded")
		}
	}
}

// A session may lower its own limit (SET max_execution_time, ms), never
// raise it.
func TestSetMaxExecutionTime(t *testing.T) {
	ts := startServer(t, withTranslator(nil), withStatementTimeout(2*time.Second))
	conn, err := ts.open(t, "").Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := context.Background()
	mustConnExec := func(q string) {
		t.Helper()
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	mustConnExec("SET max_execution_time = 100000")
	var mt string
	if err := conn.QueryRowContext(ctx, "SELECT @@max_execution_time").Scan(&mt); err != nil || mt != "2000" {
		t.Errorf("@@max_execution_time after raising = %q (%v), want 2000", mt, err)
	}
	mustConnExec("SET SESSION max_execution_time = 200")
	start := time.Now()
	if _, err := conn.ExecContext(ctx, endlessSQL); mysqlCode(err) != 3024 {
		t.Fatalf("under a lowered limit: %v", err)
	}
	if el := time.Since(start); el > 1500*time.Millisecond {
		t.Errorf("lowered limit of 200ms: interrupted after %v", el)
	}
}

// No string, blob or row longer than max_allowed_packet (16 MB): the Go
// functions say 1301 before building one, SQLite 1406.
func TestLengthLimit(t *testing.T) {
	ts := startServer(t, withTranslator(nil))
	db := ts.open(t, "")
	for _, tc := range []struct {
		q    string
		code uint16
		msg  string
	}{
		{"SELECT LENGTH(CONCAT(REPEAT('a',60000000), REPEAT('b',60000000)))", 1301, "Result of repeat() was larger than max_allowed_packet (16777216) - truncated"},
		{"SELECT LENGTH(CONCAT(REPEAT('a',9000000), REPEAT('b',9000000)))", 1301, "Result of concat() was larger than max_allowed_packet (16777216) - truncated"},
		{"SELECT LPAD('x', 17000000, 'y')", 1301, "Result of lpad() was larger than max_allowed_packet (16777216) - truncated"},
		{"SELECT LENGTH(SPACE(1 << 40))", 1301, "Result of space() was larger than max_allowed_packet (16777216) - truncated"},
	} {
		_, err := db.Exec(tc.q)
		if me := mysqlErr(err); me == nil || me.Number != tc.code || me.Message != tc.msg {
			t.Errorf("%s: %v, want %d %q", tc.q, err, tc.code, tc.msg)
		}
	}
	var n int
	if err := db.QueryRow("SELECT LENGTH(REPEAT('ab', 8000000))").Scan(&n); err != nil || n != 16000000 {
		t.Errorf("a 16 MB result: %d %v", n, err)
	}
	mustExec(t, db, "CREATE TABLE big (v LONGBLOB)")
	if _, err := db.Exec("INSERT INTO big VALUES (?)", make([]byte, 17<<20)); mysqlCode(err) != 1406 {
		t.Errorf("storing 17 MB: %v, want 1406", err)
	}
	var p string
	if err := db.QueryRow("SELECT @@max_allowed_packet").Scan(&p); err != nil || p != "16777216" {
		t.Errorf("@@max_allowed_packet = %q (%v)", p, err)
	}
}

// A result larger than MaxResultSize is refused (results are built in
// memory before they are sent) with 1041; the connection goes on.
func TestResultSizeLimit(t *testing.T) {
	ts := startServer(t, withTranslator(nil), func(c *mysqlwire.Config, _ *sqlite.Config) { c.MaxResultSize = 1 << 20 })
	db := ts.open(t, "")
	q := "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < %d) SELECT x, REPEAT('v', 1000) FROM c"
	rows, err := db.Query(fmt.Sprintf(q, 5000))
	if err == nil {
		rows.Close()
	}
	if me := mysqlErr(err); me == nil || me.Number != 1041 {
		t.Fatalf("a 5 MB result under a 1 MB limit: %v, want 1041", err)
	}
	var n int
	if err := db.QueryRow(fmt.Sprintf("SELECT COUNT(*) FROM ("+q+") t", 500)).Scan(&n); err != nil || n != 500 {
		t.Errorf("after the refused result: %d %v", n, err)
	}
}
