package main_test

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/ephpm/ephpm/internal/testutil"
)

// Issue 12, tenant isolation: a tenant's SQL has time and memory bounds.
// Each test runs the real ephpm with real php-fpm and PHP's mysqli.

// endlessCTE counts forever.
const endlessCTE = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c"

// sqlPHP runs the SQL in ?q= (prepared with ?prepared=1, over the unix
// socket with ?via=socket) and reports what mysqli saw, then whether the
// same connection still works.
const sqlPHP = `<?php
header('Content-Type: application/json');
mysqli_report(MYSQLI_REPORT_OFF);
if (($_GET['via'] ?? '') === 'socket') {
  $db = new mysqli('localhost', getenv('EPHPM_DB_USER'), getenv('EPHPM_DB_PASSWORD'), getenv('EPHPM_DB_NAME'), 0, getenv('EPHPM_DB_SOCKET'));
} else {
  $db = new mysqli(getenv('EPHPM_DB_HOST'), getenv('EPHPM_DB_USER'), getenv('EPHPM_DB_PASSWORD'), getenv('EPHPM_DB_NAME'), (int)getenv('EPHPM_DB_PORT'));
}
if ($db->connect_errno) { echo json_encode(['connect_error' => $db->connect_error]); exit; }
$t = microtime(true);
if (isset($_GET['prepared'])) {
  $st = $db->prepare($_GET['q']);
  $ok = $st && $st->execute();
  $out = $st ? ['errno' => $st->errno, 'error' => $st->error, 'sqlstate' => $st->sqlstate]
             : ['errno' => $db->errno, 'error' => $db->error, 'sqlstate' => $db->sqlstate];
  if ($ok && ($res = $st->get_result())) { $out['row'] = $res->fetch_row(); }
} else {
  $r = $db->query($_GET['q']);
  $out = ['errno' => $db->errno, 'error' => $db->error, 'sqlstate' => $db->sqlstate];
  if ($r instanceof mysqli_result) { $out['row'] = $r->fetch_row(); }
}
$out['ms'] = (int)round((microtime(true) - $t) * 1000);
$r = $db->query('SELECT 42');
$out['after'] = $r ? $r->fetch_row()[0] : $db->errno;
echo json_encode($out);
`

// sqlCredsPHP tells the test the site's database account, so that it can be
// a MySQL client of its own.
const sqlCredsPHP = `<?php
header('Content-Type: application/json');
echo json_encode(['host' => getenv('EPHPM_DB_HOST'), 'port' => getenv('EPHPM_DB_PORT'), 'user' => getenv('EPHPM_DB_USER'),
  'password' => getenv('EPHPM_DB_PASSWORD'), 'name' => getenv('EPHPM_DB_NAME')]);
`

type sqlResult struct {
	Errno    int
	Error    string
	SQLState string
	Row      []any
	Ms       int
	After    any
}

// startTenantSQLNode starts a sites node (alice.test, bob.test) whose
// sites have sql.php and creds.php.
func startTenantSQLNode(t *testing.T, env ...string) (*proc, string) {
	t.Helper()
	p, sitesDir := startSitesNode(t, env...)
	for _, site := range []string{"alice.test", "bob.test"} {
		for name, src := range map[string]string{"sql.php": sqlPHP, "creds.php": sqlCredsPHP} {
			if err := os.WriteFile(filepath.Join(sitesDir, site, name), []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return p, sitesDir
}

// runSQL runs q through a site's sql.php.
func runSQL(t *testing.T, addr, host, q, extra string) sqlResult {
	t.Helper()
	r, err := trySQL(addr, host, q, extra)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// trySQL is runSQL for goroutines other than the test's.
func trySQL(addr, host, q, extra string) (sqlResult, error) {
	var r sqlResult
	code, body, err := tryGet(addr, host, "/sql.php?q="+url.QueryEscape(q)+extra)
	if err != nil {
		return r, err
	}
	if code != 200 {
		return r, fmt.Errorf("%s %s: %d %s", host, q, code, body)
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		return r, fmt.Errorf("%s %s: %v: %s", host, q, err, body)
	}
	return r, nil
}

// tryGet is a GET with a Host header that reports its error.
func tryGet(addr, host, path string) (int, string, error) {
	req, err := http.NewRequest("GET", "http://"+addr+path, nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// siteDB opens the site's database as a MySQL client of the node.
func siteDB(t *testing.T, addr, host string) *sql.DB {
	t.Helper()
	code, body := hostGet(t, addr, host, "/creds.php")
	var c struct{ Host, Port, User, Password, Name string }
	if err := json.Unmarshal([]byte(body), &c); code != 200 || err != nil {
		t.Fatalf("creds: %d %v %s", code, err, body)
	}
	db, err := sql.Open("mysql", fmt.Sprintf("%s:%s@tcp(%s:%s)/%s", c.User, c.Password, c.Host, c.Port, c.Name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// metricValue reads one unlabelled sample from the node's /metrics.
func metricValue(t *testing.T, addr, name string) float64 {
	t.Helper()
	_, body := get(t, "http://"+addr+"/metrics")
	s := bufio.NewScanner(strings.NewReader(body))
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return -1
}

// cpuTime is the CPU time pid has used.
func cpuTime(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}

// vmHWM is pid's peak resident set size.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

// waitBusy waits until n PHP workers are busy.
func waitBusy(t *testing.T, addr string, n int) {
	t.Helper()
	testutil.RetryUntil(t, 10*time.Second, func() error {
		if v := metricValue(t, addr, "ephpm_php_pool_busy"); v < float64(n) {
			return fmt.Errorf("%v PHP workers busy, want %d", v, n)
		}
		return nil
	})
}

// A runaway recursive CTE gets MySQL's 3024 at the configured limit, by
// the text and the binary protocol; PHP's connection goes on working, and
// meanwhile another site's page answers.
func TestTenantSQLStatementTimeout(t *testing.T) {
	p, _ := startTenantSQLNode(t, "EPHPM_DB_SQLITE__STATEMENT_TIMEOUT=2s")
	for _, mode := range []struct{ name, extra string }{{"query", ""}, {"prepared", "&prepared=1"}, {"socket", "&via=socket"}} {
		t.Run(mode.name, func(t *testing.T) {
			var wg sync.WaitGroup
			var r sqlResult
			wg.Add(1)
			var rerr error
			go func() {
				defer wg.Done()
				r, rerr = trySQL(p.addr, "alice.test", endlessCTE, mode.extra)
			}()
			waitBusy(t, p.addr, 1)
			start := time.Now()
			if b := runSQL(t, p.addr, "bob.test", "SELECT 1 + 1", ""); b.Errno != 0 || fmt.Sprint(b.Row) != "[2]" {
				t.Errorf("bob.test while alice's statement runs: %+v", b)
			}
			if el := time.Since(start); el > 1500*time.Millisecond {
				t.Errorf("bob.test answered in %v while alice's statement ran", el)
			}
			wg.Wait()
			if rerr != nil {
				t.Fatal(rerr)
			}
			if r.Errno != 3024 || r.SQLState != "HY000" || r.Error != "Query execution was interrupted, maximum statement execution time exceeded" {
				t.Fatalf("runaway CTE: %+v, want 3024 (HY000)", r)
			}
			if r.Ms < 1500 || r.Ms > 8000 {
				t.Errorf("interrupted after %d ms, limit 2 s", r.Ms)
			}
			if fmt.Sprint(r.After) != "42" {
				t.Errorf("the same connection afterwards: %v", r.After)
			}
		})
	}
	if n := metricValue(t, p.addr, "ephpm_mysql_statement_timeouts_total"); n < 3 {
		t.Errorf("ephpm_mysql_statement_timeouts_total = %v", n)
	}
}

// A statement whose client went away stops at once: PHP killed by
// php-fpm's request_terminate_timeout (max_execution_time + 5 s, PHP's own
// limit does not count time waiting for the database), and a MySQL client
// that disconnects. The node's CPU time stops growing.
func TestTenantSQLInterruptedWhenClientGone(t *testing.T) {
	p, _ := startTenantSQLNode(t, "EPHPM_DB_SQLITE__STATEMENT_TIMEOUT=300s", "EPHPM_PHP__MAX_EXECUTION_TIME=1")
	pid := p.cmd.Process.Pid
	idleCPU := func(what string) {
		t.Helper()
		before := cpuTime(t, pid)
		time.Sleep(2 * time.Second)
		if used := cpuTime(t, pid) - before; used > 500*time.Millisecond {
			t.Errorf("%s: ephpm used %v of CPU in 2 s: the statement still runs", what, used)
		}
	}

	t.Run("php killed", func(t *testing.T) {
		start := time.Now()
		done := make(chan struct{})
		go func() {
			defer close(done)
			tryGet(p.addr, "alice.test", "/sql.php?q="+url.QueryEscape(endlessCTE)) // killed: 5xx
		}()
		testutil.RetryUntil(t, 20*time.Second, func() error {
			if n := metricValue(t, p.addr, "ephpm_mysql_client_gone_total"); n < 1 {
				return fmt.Errorf("ephpm_mysql_client_gone_total = %v", n)
			}
			return nil
		})
		t.Logf("interrupted %v after the request began (php-fpm kills at 6 s)", time.Since(start))
		<-done
		idleCPU("after PHP was killed")
	})

	t.Run("client disconnects", func(t *testing.T) {
		db := siteDB(t, p.addr, "alice.test")
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() {
			_, err := db.ExecContext(ctx, endlessCTE)
			errc <- err
		}()
		time.Sleep(500 * time.Millisecond)
		cancel() // go-sql-driver closes the connection
		<-errc
		testutil.RetryUntil(t, 5*time.Second, func() error {
			if n := metricValue(t, p.addr, "ephpm_mysql_client_gone_total"); n < 2 {
				return fmt.Errorf("ephpm_mysql_client_gone_total = %v", n)
			}
			return nil
		})
		idleCPU("after the client disconnected")
	})
}

// Statements that would build huge strings get a MySQL error instead of
// growing the node: three at once leave its peak RSS low. A result too big
// to build is refused too.
func TestTenantSQLMemoryBound(t *testing.T) {
	p, _ := startTenantSQLNode(t, "EPHPM_PHP__WORKERS=3")
	pid := p.cmd.Process.Pid
	base := vmHWM(t, pid)
	hostile := []string{
		"SELECT LENGTH(CONCAT(REPEAT('a',60000000), REPEAT('b',60000000)))",
		"SELECT LENGTH(REPEAT(CONCAT(REPEAT('a',1000000), 'b'), 1000))",
		"SELECT LENGTH(CONCAT(LPAD('a', 9000000, 'xy'), RPAD('b', 9000000, 'z')))",
	}
	var wg sync.WaitGroup
	res := make([]sqlResult, len(hostile))
	errs := make([]error, len(hostile))
	for round := 0; round < 2; round++ {
		for i, q := range hostile {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res[i], errs[i] = trySQL(p.addr, "alice.test", q, "")
			}()
		}
		wg.Wait()
		for i, r := range res {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			if r.Errno != 1301 || !strings.Contains(r.Error, "was larger than max_allowed_packet (16777216)") || fmt.Sprint(r.After) != "42" {
				t.Errorf("%s: %+v, want 1301", hostile[i], r)
			}
		}
	}
	// Strings up to the limit still work.
	if r := runSQL(t, p.addr, "alice.test", "SELECT LENGTH(CONCAT(REPEAT('a',8000000), REPEAT('b',8000000)))", ""); r.Errno != 0 || fmt.Sprint(r.Row) != "[16000000]" {
		t.Errorf("a 16 MB string: %+v", r)
	}
	peak := vmHWM(t, pid)
	t.Logf("VmHWM %d MB at start, %d MB after the hostile statements", base>>20, peak>>20)
	if peak > 256<<20 {
		t.Errorf("ephpm's peak RSS reached %d MB", peak>>20)
	}
	// A result ephpm would have to build beyond max_result_size (128 MB).
	r := runSQL(t, p.addr, "alice.test",
		"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 1000) SELECT REPEAT('v', 1000000) FROM c", "")
	if r.Errno != 1041 {
		t.Errorf("a 1 GB result: %+v, want 1041", r)
	}
	if b := runSQL(t, p.addr, "bob.test", "SELECT 1", ""); b.Errno != 0 {
		t.Errorf("the node after: %+v", b)
	}
}

// SIGTERM stops ephpm within [server.timeouts] shutdown even while
// statements run that would never end on their own; a request that only
// needs a moment more finishes, with its database, during the drain.
func TestTenantSQLSIGTERMStops(t *testing.T) {
	const shutdown = 5 * time.Second
	p, _ := startTenantSQLNode(t, "EPHPM_SERVER__TIMEOUTS__SHUTDOWN=5s", "EPHPM_DB_SQLITE__STATEMENT_TIMEOUT=600s")
	db := siteDB(t, p.addr, "bob.test") // before both PHP workers are busy
	go db.Exec(endlessCTE)
	go tryGet(p.addr, "alice.test", "/sql.php?q="+url.QueryEscape(endlessCTE))
	finite := make(chan sqlResult, 1)
	go func() {
		// Half a second of work (seconds on a loaded host: the drain allows 5).
		r, err := trySQL(p.addr, "bob.test", "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 2000000) SELECT count(*) FROM c", "")
		if err != nil {
			r.Error = err.Error()
			r.Errno = -1
		}
		finite <- r
	}()
	waitBusy(t, p.addr, 2)
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		t.Logf("exited %v after SIGTERM (%v)", time.Since(start), err)
		p.done <- err // for the cleanup
	case <-time.After(shutdown + 7*time.Second):
		t.Fatalf("ephpm still running %v after SIGTERM (shutdown timeout %v)\n%s", time.Since(start), shutdown, tail(p.out.String(), 20))
	}
	select {
	case r := <-finite:
		if r.Errno != 0 || fmt.Sprint(r.Row) != "[2000000]" {
			t.Errorf("the request in flight at SIGTERM: %+v, want its 2000000", r)
		}
	default:
		t.Error("the request in flight at SIGTERM did not finish")
	}
	if pids := testutil.ProcessesMatching(p.runDir); len(pids) > 0 {
		t.Errorf("php-fpm left running after shutdown: %v", pids)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
