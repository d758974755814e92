package replication_test

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"testing"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/internal/testutil"
	"github.com/ephpm/ephpm/replication"
)

// goroutinesIn lists the stacks of running goroutines that are inside fn.
func goroutinesIn(fn string) []string {
	var b bytes.Buffer
	pprof.Lookup("goroutine").WriteTo(&b, 2)
	var out []string
	for _, g := range strings.Split(b.String(), "\n\n") {
		if strings.Contains(g, fn) {
			out = append(out, g)
		}
	}
	return out
}

// Close returns only when every goroutine the manager started has ended:
// streams that are retrying, streams that are connected (and their
// watchdogs), the expiry of forwarded sessions.
func TestCloseWaitsForEveryLoop(t *testing.T) {
	root := t.TempDir()
	p := startNode(t, filepath.Join(root, "frankfurt"), 0)
	r := startNode(t, filepath.Join(root, "tokyo"), 0)
	os.MkdirAll(p.dir, 0o700)
	os.MkdirAll(r.dir, 0o700)
	setup(p, r, "up.com")
	testutil.Exec(t, p.db(t, "up.com"), "CREATE TABLE t (a)")
	eventually(t, "replica streaming", func() bool { return r.m.Status()[0].State == string(replication.ReplicaStreaming) })
	// A second site whose primary does not answer: its stream retries.
	r.m.SetSites([]replication.SiteConfig{
		{Name: "up.com", DBPath: filepath.Join(r.dir, "up.com.db"), Role: ephpm.RoleReplica, PrimaryURL: p.url},
		{Name: "down.com", DBPath: filepath.Join(r.dir, "down.com.db"), Role: ephpm.RoleReplica, PrimaryURL: "http://127.0.0.1:1"},
	})
	eventually(t, "unreachable primary failing", func() bool {
		for _, st := range r.m.Status() {
			if st.Site == "down.com" && strings.HasPrefix(st.State, "error: ") {
				return true
			}
		}
		return false
	})
	if len(goroutinesIn("replication.newSessions")) != 2 {
		t.Fatalf("want the session expiry of both managers running:\n%s", strings.Join(goroutinesIn("task."), "\n\n"))
	}
	if len(goroutinesIn("replication.(*site).run")) != 2 {
		t.Fatalf("want 2 streams running:\n%s", strings.Join(goroutinesIn("replication."), "\n\n"))
	}
	for _, n := range []*node{r, p} {
		if err := n.m.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for _, fn := range []string{"replication.(*site).run", "replication.(*site).stream", "replication.newSessions"} {
		if left := goroutinesIn(fn); len(left) > 0 {
			t.Errorf("after Close, still in %s:\n%s", fn, strings.Join(left, "\n\n"))
		}
	}
}
