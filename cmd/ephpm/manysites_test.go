package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ephpm/ephpm/internal/testutil"
)

const counterPHP = `<?php
$db = new mysqli(getenv('EPHPM_DB_HOST'), getenv('EPHPM_DB_USER'), getenv('EPHPM_DB_PASSWORD'), getenv('EPHPM_DB_NAME'), (int)getenv('EPHPM_DB_PORT'));
$db->query('CREATE TABLE IF NOT EXISTS hits (id INTEGER PRIMARY KEY AUTO_INCREMENT, at INT)');
$db->query('INSERT INTO hits (at) VALUES (' . time() . ')');
echo basename(__DIR__), ' ', $db->query('SELECT COUNT(*) FROM hits')->fetch_row()[0];
`

func fdCount(pid int) int {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents)
}

// TestThousandSites serves 1,000 sites, each with its own database, from
// one sites_dir; idle databases are closed again.
func TestThousandSites(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	testutil.NeedProgram(t, "php")
	const n = 1000
	base := testutil.WorldReadableDir(t)
	sitesDir := filepath.Join(base, "sites")
	for i := 0; i < n; i++ {
		dir := filepath.Join(sitesDir, fmt.Sprintf("site%04d.test", i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "index.php"), []byte(counterPHP), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cwd, _ := filepath.Abs("testdata/site")
	p := startEphpm(t, cwd,
		"EPHPM_SERVER__SITES_DIR="+sitesDir, "EPHPM_SERVER__DATA_DIR="+filepath.Join(base, "data"),
		"EPHPM_DB_SQLITE_PROXY__ENABLED=true", "EPHPM_DB_SQLITE_PROXY__MYSQL_LISTEN="+freePort(t),
		"EPHPM_DB_SQLITE__IDLE_CLOSE=2s", "EPHPM_PHP__WORKERS=4", "EPHPM_SERVER__ACCESS_LOG=false")
	baseFDs := fdCount(p.cmd.Process.Pid)

	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			name := fmt.Sprintf("site%04d.test", i)
			code, body := hostGet(t, p.addr, name, "/")
			if code != 200 || body != name+" 1" {
				errs <- fmt.Errorf("%s: %d %q", name, code, body)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	bad := 0
	for err := range errs {
		if bad++; bad <= 5 {
			t.Error(err)
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d sites failed", bad, n)
	}
	// Each database file exists on its own.
	dbs, _ := filepath.Glob(filepath.Join(base, "data", "sites", "*.db"))
	if len(dbs) != n {
		t.Errorf("%d database files, want %d", len(dbs), n)
	}
	// Idle sites give their file descriptors back.
	testutil.RetryUntil(t, 30*time.Second, func() error {
		_, m := get(t, "http://"+p.addr+"/metrics")
		open := -1
		for _, l := range strings.Split(m, "\n") {
			if v, ok := strings.CutPrefix(l, "ephpm_db_open_databases "); ok {
				open, _ = strconv.Atoi(v)
			}
		}
		if fds := fdCount(p.cmd.Process.Pid); open != 0 || fds > baseFDs+20 {
			return fmt.Errorf("%d databases open, %d fds (%d at start)", open, fds, baseFDs)
		}
		return nil
	})
	// A second round still counts per site.
	if code, body := hostGet(t, p.addr, "site0007.test", "/"); code != 200 || body != "site0007.test 2" {
		t.Errorf("second visit: %d %q", code, body)
	}
}
