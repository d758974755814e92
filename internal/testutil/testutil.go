// Package testutil holds helpers shared by ephpm's tests: polling
// instead of sleeping, and finding the Debian programs tests drive.
package testutil

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// RetryUntil calls f until it returns nil or the timeout passes, then
// fails the test with f's last error.
func RetryUntil(tb testing.TB, timeout time.Duration, f func() error) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	wait := 5 * time.Millisecond
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("still failing after %v: %v", timeout, err)
		}
		time.Sleep(wait)
		if wait < 200*time.Millisecond {
			wait *= 2
		}
	}
}

// NeedProgram returns the path of a program, or skips the test when it
// is missing, unless EPHPM_REQUIRE_ALL is set (as in CI), where a missing
// program fails the test.
func NeedProgram(tb testing.TB, names ...string) string {
	tb.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
		for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
			if p := filepath.Join(dir, n); isExec(p) {
				return p
			}
		}
	}
	if os.Getenv("EPHPM_REQUIRE_ALL") != "" {
		tb.Fatalf("required program missing: %s", strings.Join(names, " or "))
	}
	tb.Skipf("program missing: %s", strings.Join(names, " or "))
	return ""
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// WorldReadableDir makes a temp dir that php-fpm workers running as an
// unprivileged user can read (t.TempDir is 0700).
func WorldReadableDir(tb testing.TB) string {
	tb.Helper()
	d := tb.TempDir()
	for p := d; p != "/" && p != os.TempDir(); p = filepath.Dir(p) {
		_ = os.Chmod(p, 0o755)
	}
	return d
}

// ProcessesMatching lists the PIDs whose command line contains s.
func ProcessesMatching(s string) []int {
	return processesMatching(s)
}

// TopProcessesMatching is ProcessesMatching without the processes whose
// parent matches too: a php-fpm worker that has just forked still shows
// its master's title for a moment.
func TopProcessesMatching(s string) []int {
	all := processesMatching(s)
	in := make(map[int]bool, len(all))
	for _, p := range all {
		in[p] = true
	}
	var top []int
	for _, p := range all {
		if !in[parentPID(p)] {
			top = append(top, p)
		}
	}
	return top
}

// parentPID reads a process's parent from /proc (0 if it is gone).
func parentPID(pid int) int {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	// pid (comm) state ppid ...: comm may hold spaces and parentheses.
	rest := string(b[strings.LastIndexByte(string(b), ')')+1:])
	f := strings.Fields(rest)
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

func processesMatching(s string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid := 0
		for _, c := range e.Name() {
			if c < '0' || c > '9' {
				pid = -1
				break
			}
			pid = pid*10 + int(c-'0')
		}
		if pid <= 0 {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if strings.Contains(strings.ReplaceAll(string(b), "\x00", " "), s) {
			pids = append(pids, pid)
		}
	}
	return pids
}

var npmMu sync.Mutex

// NPMInstall runs `npm install` in dir (a package.json of test clients)
// unless every package in want is already in its node_modules, and
// returns dir made absolute. Node and npm are Debian's nodejs.
func NPMInstall(tb testing.TB, dir string, want ...string) string {
	tb.Helper()
	NeedProgram(tb, "node")
	NeedProgram(tb, "npm")
	abs, err := filepath.Abs(dir)
	if err != nil {
		tb.Fatal(err)
	}
	npmMu.Lock()
	defer npmMu.Unlock()
	missing := false
	for _, p := range want {
		if _, err := os.Stat(filepath.Join(abs, "node_modules", p, "package.json")); err != nil {
			missing = true
		}
	}
	if !missing {
		return abs
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "install", "--no-audit", "--no-fund")
	cmd.Dir = abs
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("npm install in %s: %v\n%s", abs, err, out)
	}
	return abs
}
