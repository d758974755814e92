package replication_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/internal/testutil"
	"github.com/ephpm/ephpm/replication"
	"github.com/ephpm/ephpm/sqlite"
)

// startPair runs a primary (frankfurt) and a replica (tokyo) of s.com
// and o.com, caught up; the replica waits waitApplied for a client's
// write.
func startPair(t *testing.T, waitApplied time.Duration) (p, r *node) {
	t.Helper()
	root := t.TempDir()
	p = startNode(t, filepath.Join(root, "frankfurt"), 0)
	r = startNodeWith(t, filepath.Join(root, "tokyo"), 0, func(c *replication.Config) { c.WaitApplied = waitApplied })
	os.MkdirAll(p.dir, 0o700)
	os.MkdirAll(r.dir, 0o700)
	setup(p, r, "s.com", "o.com")
	testutil.Exec(t, p.db(t, "s.com"), "CREATE TABLE t (a)")
	testutil.Exec(t, p.db(t, "o.com"), "CREATE TABLE t (a)")
	eventually(t, "replica caught up", func() bool {
		ps, rs := p.m.Status(), r.m.Status()
		return len(ps) == 2 && len(rs) == 2 && ps[0].Position == rs[0].Position && ps[1].Position == rs[1].Position && rs[0].Position > 0
	})
	return p, r
}

func position(m *replication.Manager, site string) uint64 {
	for _, s := range m.Status() {
		if s.Site == site {
			return s.Position
		}
	}
	return 0
}

// TestFrameCookieForgedIgnored: a replica holds a read back only for a
// cookie this cluster issued for this site that has not expired; any
// other is ignored at once (no wait, no trip to the primary).
func TestFrameCookieForgedIgnored(t *testing.T) {
	p, r := startPair(t, 2*time.Second)
	route := r.m.Route("s.com")
	ahead := position(p.m, "s.com") + 1000
	otherPool := sqlite.NewPool(sqlite.PoolConfig{})
	t.Cleanup(func() { otherPool.Close() })
	otherCluster, err := replication.New(replication.Config{Node: "elsewhere", Token: "another-cluster-token-0123", Pool: otherPool})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { otherCluster.Close() })
	genuine := replication.FrameCookie(r.m, "s.com", ahead, time.Now().Add(time.Minute))
	tampered := []byte(genuine)
	tampered[len(tampered)-1] ^= 1
	for _, tc := range []struct{ name, cookie string }{
		{"a bare number", "999999999"},
		{"the old format of a real position", "1000"},
		{"garbage", "a.b.c"},
		{"empty MAC", genuine[:strings.LastIndexByte(genuine, '.')+1]},
		{"tampered MAC", string(tampered)},
		{"another frame under the same MAC", "zzzz" + genuine[strings.IndexByte(genuine, '.'):]},
		{"another site's", replication.FrameCookie(r.m, "o.com", ahead, time.Now().Add(time.Minute))},
		{"expired", replication.FrameCookie(r.m, "s.com", ahead, time.Now().Add(-time.Second))},
		{"another cluster's", replication.FrameCookie(otherCluster, "s.com", ahead, time.Now().Add(time.Minute))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "http://s.com/", nil)
			req.AddCookie(&http.Cookie{Name: replication.CookieName, Value: tc.cookie})
			start := time.Now()
			if route(httptest.NewRecorder(), req) {
				t.Fatal("the read left the replica")
			}
			if d := time.Since(start); d > 500*time.Millisecond {
				t.Fatalf("held the read %s", d)
			}
		})
	}
	// The genuine one is held, then sent to the primary.
	req := httptest.NewRequest("GET", "http://s.com/", nil)
	req.AddCookie(&http.Cookie{Name: replication.CookieName, Value: genuine})
	start := time.Now()
	rec := httptest.NewRecorder()
	if !route(rec, req) || !strings.HasPrefix(rec.Body.String(), "served by frankfurt") {
		t.Fatalf("a genuine cookie ahead of the replica: %q", rec.Body.String())
	}
	if d := time.Since(start); d < 2*time.Second {
		t.Fatalf("gave up after %s, before wait_applied", d)
	}
}

// TestForwardedRequestKeepsClient: a write a replica passes to the
// primary carries the client the replica's front believed (behind its
// trusted proxy) and its scheme; the cookie it gets back is Secure when
// the client used HTTPS.
func TestForwardedRequestKeepsClient(t *testing.T) {
	_, r := startPair(t, time.Second)
	route := r.m.Route("s.com")
	req := httptest.NewRequest("POST", "http://s.com/wp-admin/post.php", nil)
	req.RemoteAddr = "127.0.0.1:5555" // the trusted proxy
	req.Header.Set("X-Forwarded-For", "198.51.100.1")
	req.Header.Set("X-Ephpm-Client-Addr", "192.0.2.66:1") // a client's own is dropped
	req = req.WithContext(ephpm.WithClient(req.Context(), ephpm.Client{IP: "203.0.113.7", HTTPS: true, ServerPort: "443"}))
	rec := httptest.NewRecorder()
	if !route(rec, req) {
		t.Fatal("a write stayed on the replica")
	}
	if got, want := rec.Body.String(), "served by frankfurt for 203.0.113.7: (https=true server_port=443 via=tokyo)"; got != want {
		t.Fatalf("the primary saw %q, want %q", got, want)
	}
	var secure, found bool
	for _, c := range rec.Result().Cookies() {
		if c.Name == replication.CookieName {
			found, secure = true, c.Secure
		}
	}
	if !found || !secure {
		t.Fatalf("read-your-writes cookie: found=%v secure=%v", found, secure)
	}
}

// TestForwardedIdentityOnlyFromPeers: the replication listener believes
// a forwarded request's client headers only behind the cluster token,
// and a malformed one falls back to the peer's own address.
func TestForwardedIdentityOnlyFromPeers(t *testing.T) {
	p, _ := startPair(t, time.Second)
	send := func(auth, clientAddr string, forwarded bool) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(context.Background(), "POST", p.url+"/wp-admin/post.php", nil)
		req.Host = "s.com"
		if forwarded {
			req.Header.Set("X-Ephpm-Forwarded", "tokyo")
		}
		if auth != "" {
			req.Header.Set("X-Ephpm-Auth", auth)
		}
		req.Header.Set("X-Ephpm-Client-Addr", clientAddr)
		req.Header.Set("X-Ephpm-Proto", "https")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := send("", "203.0.113.7:1", true); code != http.StatusUnauthorized {
		t.Errorf("without the token: %d %q", code, body)
	}
	if code, body := send("Bearer not-the-cluster-token-0123", "203.0.113.7:1", true); code != http.StatusUnauthorized {
		t.Errorf("with a wrong token: %d %q", code, body)
	}
	if code, body := send("", "203.0.113.7:1", false); code != http.StatusNotFound || strings.Contains(body, "served by") {
		t.Errorf("client headers without X-Ephpm-Forwarded reached the front: %d %q", code, body)
	}
	if code, body := send("Bearer "+token, "203.0.113.7:1", true); code != 200 || !strings.HasPrefix(body, "served by frankfurt for 203.0.113.7:1 (https=true") {
		t.Errorf("a peer's forwarded request: %d %q", code, body)
	}
	for _, bad := range []string{"not-an-address", "evil.example:80", "203.0.113.7:99999", "203.0.113.7:x"} {
		if code, body := send("Bearer "+token, bad, true); code != 200 || !strings.HasPrefix(body, "served by frankfurt for 127.0.0.1:") {
			t.Errorf("client address %q: %d %q", bad, code, body)
		}
	}
}
