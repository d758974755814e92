package main_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ephpm/ephpm/internal/testutil"
	"github.com/ephpm/ephpm/sqlite"
)

// Fault tests of issue 15 (failover without split brain): real ephpm
// processes, a primary killed, partitioned, paused; the quorum lost.
// Every one ends with the split-brain check: each node logs every commit
// it acknowledged with the site's epoch (EPHPM_COMMIT_AUDIT), and no two
// nodes may have acknowledged commits of one epoch, nor commits of two
// epochs at overlapping times.

// taggedPHP counts this node's rows written with one value.
const taggedPHP = `<?php
$m = new mysqli($_SERVER['EPHPM_DB_HOST'], $_SERVER['EPHPM_DB_USER'], $_SERVER['EPHPM_DB_PASSWORD'],
	$_SERVER['EPHPM_DB_NAME'], (int) $_SERVER['EPHPM_DB_PORT']);
$st = $m->prepare("SELECT count(*) FROM acks WHERE v = ?");
$v = $_GET['v'] ?? '';
$st->bind_param('s', $v);
$st->execute();
echo "tagged ", $st->get_result()->fetch_row()[0];
`

// auditEnv makes every node log its acknowledged commits (relative to
// its base directory, its working directory).
var auditEnv = []string{"EPHPM_COMMIT_AUDIT=commits.jsonl"}

type auditLine struct {
	Node  string `json:"node"`
	Site  string `json:"site"`
	Epoch uint64 `json:"epoch"`
	Frame uint64 `json:"frame"`
	T     int64  `json:"t"`
}

// audits reads every node's acknowledged commits.
func (c *edgeCluster) audits() ([]auditLine, error) {
	var all []auditLine
	for _, name := range c.names {
		f, err := os.Open(filepath.Join(c.nodes[name].base, "commits.jsonl"))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		s := bufio.NewScanner(f)
		for s.Scan() {
			var l auditLine
			if err := json.Unmarshal(s.Bytes(), &l); err != nil {
				continue // a line cut by kill -9
			}
			if l.Node == "" {
				l.Node = name
			}
			all = append(all, l)
		}
		f.Close()
	}
	return all, nil
}

// checkSplitBrain fails the test if two nodes ever acknowledged writes
// of one site at once: one node per epoch, and each epoch's commits all
// before the next epoch's first.
func (c *edgeCluster) checkSplitBrain(site string) {
	c.t.Helper()
	lines, err := c.audits()
	if err != nil {
		c.t.Fatal(err)
	}
	type span struct {
		node        string
		first, last int64
		n           int
	}
	epochs := map[uint64]*span{}
	for _, l := range lines {
		if l.Site != site {
			continue
		}
		s := epochs[l.Epoch]
		if s == nil {
			epochs[l.Epoch] = &span{node: l.Node, first: l.T, last: l.T, n: 1}
			continue
		}
		if s.node != l.Node {
			c.t.Fatalf("split brain: %s and %s both acknowledged commits of %s at epoch %d", s.node, l.Node, site, l.Epoch)
		}
		s.first, s.last, s.n = min(s.first, l.T), max(s.last, l.T), s.n+1
	}
	var keys []uint64
	for e := range epochs {
		keys = append(keys, e)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	var summary []string
	for i, e := range keys {
		s := epochs[e]
		summary = append(summary, fmt.Sprintf("epoch %d: %s, %d commits", e, s.node, s.n))
		if i > 0 {
			prev := epochs[keys[i-1]]
			if prev.node != s.node && prev.last >= s.first {
				c.t.Fatalf("split brain: %s acknowledged a commit of %s at epoch %d %v after %s's first at epoch %d",
					prev.node, site, keys[i-1], time.Duration(prev.last-s.first), s.node, e)
			}
		}
	}
	if len(keys) == 0 {
		c.t.Fatalf("no commit of %s audited: is EPHPM_COMMIT_AUDIT working?", site)
	}
	c.t.Logf("split-brain check of %s: %s", site, strings.Join(summary, "; "))
}

// pageHashes is a node's copy of a site, page by page.
func (c *edgeCluster) pageHashes(node, site string) ([][32]byte, error) {
	pages, err := c.pages(node, site)
	out := make([][32]byte, len(pages))
	for i, p := range pages {
		out[i] = sha256.Sum256(p)
	}
	return out, err
}

// pages is a node's copy of a site, page by page.
func (c *edgeCluster) pages(node, site string) ([][]byte, error) {
	db, err := sqlite.Open(context.Background(), sqlite.Config{Path: c.dbPath(node, site), ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.Reader().Query("SELECT data FROM sqlite_dbpage ORDER BY pgno")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		if len(out) == 0 && len(b) >= 100 {
			// SQLite's writer stamps its own change counter into page 1
			// of the file it writes (bytes 24–27 and 92–95, "file change
			// counter" and "version-valid-for"): on a replica applying a
			// transaction that touched page 1 it counts that replica's
			// transactions. Everything else must be equal.
			clear(b[24:28])
			clear(b[92:96])
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// waitPagesEqual waits until every node's copy of site is the same,
// page by page.
func (c *edgeCluster) waitPagesEqual(names []string, site string, timeout time.Duration) {
	c.t.Helper()
	testutil.RetryUntil(c.t, timeout, func() error {
		ref, err := c.pages(names[0], site)
		if err != nil {
			return err
		}
		for _, n := range names[1:] {
			h, err := c.pages(n, site)
			if err != nil {
				return err
			}
			if len(h) != len(ref) {
				return fmt.Errorf("%s has %d pages, %s %d", n, len(h), names[0], len(ref))
			}
			for i := range h {
				if !bytes.Equal(h[i], ref[i]) {
					var at []int
					for j := range h[i] {
						if h[i][j] != ref[i][j] && len(at) < 8 {
							at = append(at, j)
						}
					}
					return fmt.Errorf("page %d of %s differs on %s and %s (bytes %v...)", i+1, site, n, names[0], at)
				}
			}
		}
		return nil
	})
}

// failoverSite writes the test site (writer, reader, and a site.toml
// naming its primary, with extra settings) on every node.
func failoverSite(site, primary, extra string) func(c *edgeCluster) {
	return func(c *edgeCluster) {
		c.siteFiles(site, map[string]string{"w.php": writerPHP, "r.php": readerPHP,
			"site.toml": fmt.Sprintf(clusterSiteToml, primary) + extra})
	}
}

// startFailover starts a cluster of names whose site (the writer and
// reader, site.toml naming primary, with extra settings) streams to every
// node and has taken one write; every node audits its commits.
func startFailover(t *testing.T, names []string, delay time.Duration, site, primary, extra string, opts edgeOpts) *edgeCluster {
	t.Helper()
	before := opts.before
	opts.env = append(opts.env, auditEnv...)
	opts.before = func(c *edgeCluster) {
		failoverSite(site, primary, extra)(c)
		if before != nil {
			before(c)
		}
	}
	c := newEdgeCluster(t, names, delay, opts)
	c.waitMembers(names, 120*time.Second)
	c.waitSiteStreaming(names, site, primary, 120*time.Second)
	if ok, why := c.writeOK(primary, site, "first"); !ok {
		t.Fatalf("first write: %s", why)
	}
	return c
}

// settle ends a fault test: every node serves site from primary (""
// the directory's, as tokyo sees it), every copy is equal page for
// page, and no two nodes ever acknowledged writes at once.
func (c *edgeCluster) settle(site, primary string) {
	c.t.Helper()
	if primary == "" {
		primary, _ = c.primaryOf("tokyo", site)
	}
	c.waitSiteStreaming(c.names, site, primary, 120*time.Second)
	c.waitPagesEqual(c.names, site, 90*time.Second)
	c.checkSplitBrain(site)
}

// primaryOf is the site's primary as node's directory says.
func (c *edgeCluster) primaryOf(node, site string) (string, uint64) {
	s, err := c.statusErr(node)
	if err != nil || s.site(site) == nil {
		return "", 0
	}
	return s.site(site).Primary, s.site(site).Epoch
}

// writeOK makes one write of one row through node and reports whether
// it was acknowledged.
func (c *edgeCluster) writeOK(node, site, v string) (bool, string) {
	code, body := c.rawDo(node, site, "POST", "/w.php?n=1&v="+v)
	return code == 200 && len(parseAcks(body)) == 1, fmt.Sprintf("%d %s", code, strings.TrimSpace(tail(body, 3)))
}

// rawGet is one GET through node, 15 s at most; status 0 when no answer
// came (never fails the test).
func (c *edgeCluster) rawGet(node, site, path string) (int, string) {
	return c.rawDo(node, site, "GET", path)
}

// rawDo is one request (no body) through node, as rawGet.
func (c *edgeCluster) rawDo(node, site, method, path string) (int, string) {
	addr := c.nodes[node].http
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	}}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 15 * time.Second}
	req, _ := http.NewRequest(method, "http://"+site+path, nil)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitWrites waits until a write through each of nodes is acknowledged
// and returns when the last of them first was. Each node gets a new
// probe every 200 ms (each bounded by rawDo's 15 s), so one probe stuck
// on a dead primary does not hide a later one's success.
func (c *edgeCluster) waitWrites(nodes []string, site string, timeout time.Duration) time.Time {
	c.t.Helper()
	var last time.Time
	for _, n := range nodes {
		first := make(chan time.Time, 1)
		var wg sync.WaitGroup
		deadline := time.After(timeout)
		var lastWhy atomic.Value
		lastWhy.Store("no answer yet")
	probes:
		for i := 0; ; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				ok, why := c.writeOK(n, site, fmt.Sprintf("probe-%s-%d", n, i))
				if !ok {
					lastWhy.Store(why)
					return
				}
				select {
				case first <- time.Now():
				default:
				}
			}(i)
			select {
			case at := <-first:
				if at.After(last) {
					last = at
				}
				break probes
			case <-deadline:
				wg.Wait()
				c.t.Fatalf("no write through %s acknowledged in %v: %v", n, timeout, lastWhy.Load())
			case <-time.After(200 * time.Millisecond):
			}
		}
		// Probes still out end on their own (rawDo's bound); none
		// touches the test.
	}
	return last
}

// TestFailoverKillPrimary: kill -9 the primary under a write load through
// a replica region (125 ms one way), with sync = "replica": writes work
// again through every region well within 10 s of the lease lapsing, no
// acknowledged write is lost, and when the old primary comes back it
// catches up and the site fails back to it.
func TestFailoverKillPrimary(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	const site = "shop.test"
	c := startFailover(t, clusterNames, 125*time.Millisecond, site, "frankfurt", "sync = \"replica\"\n", edgeOpts{})

	// 4 writes a second through tokyo (with sync = "replica" each holds
	// one of frankfurt's 3 PHP workers for a round trip to a replica);
	// frankfurt dies after 3 s.
	stop := make(chan struct{})
	done := make(chan *loadResult)
	go func() {
		done <- c.writeLoad("tokyo", site, 4, 400, 1, nil, stop)
	}()
	time.Sleep(3 * time.Second)
	killed := time.Now()
	c.kill9("frankfurt")
	back := c.waitWrites([]string{"tokyo", "saopaulo"}, site, 60*time.Second)
	t.Logf("writes work again through tokyo and saopaulo %v after the kill", back.Sub(killed).Round(time.Millisecond))
	if d := back.Sub(killed); d > 20*time.Second {
		t.Errorf("failover took %v", d)
	}
	time.Sleep(2 * time.Second)
	close(stop)
	res := <-done
	newPrimary, epoch := c.primaryOf("tokyo", site)
	if newPrimary == "frankfurt" || newPrimary == "" {
		t.Fatalf("primary after the kill: %q", newPrimary)
	}
	t.Logf("new primary %s at epoch %d; %d rows acknowledged, %d requests failed %v", newPrimary, epoch, len(res.acked), res.failed, res.firstErr)
	if len(res.dups) > 0 {
		t.Fatalf("an id acknowledged twice: %v", res.dups)
	}
	// sync = "replica": every acknowledged row is on the new primary.
	testutil.RetryUntil(t, 30*time.Second, func() error { return c.ackRows(newPrimary, site, res.acked) })

	// frankfurt comes back: it catches up and the site fails back.
	c.restart("frankfurt")
	c.waitSiteStreaming(clusterNames, site, "frankfurt", 120*time.Second)
	if ok, why := c.writeOK("saopaulo", site, "after-failback"); !ok {
		t.Fatalf("write after the failback: %s", why)
	}
	if err := c.ackRows("frankfurt", site, res.acked); err != nil {
		t.Fatal(err)
	}
	c.waitPagesEqual(clusterNames, site, 60*time.Second)
	c.checkSplitBrain(site)
}

// TestFailoverPartitionedPrimary: the primary is cut off from every
// other node (both ways) while its own region keeps writing to it. It
// stops acknowledging writes within its lease (503 naming the site),
// the majority promotes a replica, and once the partition heals the old
// primary rejoins as a replica: what it acknowledged alone is kept in a
// quarantine file, and its copy ends page for page equal to the others.
func TestFailoverPartitionedPrimary(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	const site = "news.test"
	c := startFailover(t, clusterNames, 50*time.Millisecond, site, "frankfurt", "failback = false\n", edgeOpts{netns: true})

	c.isolate("frankfurt", true)
	cut := time.Now()
	// Frankfurt's own region keeps writing until it refuses.
	var alone []string
	var refusal string
	testutil.RetryUntil(t, 30*time.Second, func() error {
		ok, why := c.writeOK("frankfurt", site, fmt.Sprintf("alone%d", len(alone)))
		if ok {
			alone = append(alone, why)
			return fmt.Errorf("frankfurt still acknowledges writes %v after the cut", time.Since(cut))
		}
		refusal = why
		return nil
	})
	stopped := time.Since(cut)
	t.Logf("frankfurt acknowledged %d writes alone, then refused after %v: %s", len(alone), stopped.Round(time.Millisecond), refusal)
	if !strings.HasPrefix(refusal, "503") || !strings.Contains(refusal, site) {
		t.Errorf("refusal %q: want a 503 naming the site", refusal)
	}
	// Reads still work there.
	if code, body := c.rawGet("frankfurt", site, "/r.php"); code != 200 || !strings.Contains(body, "rows ") {
		t.Errorf("read on the cut-off primary: %d %s", code, body)
	}
	// The majority promotes.
	c.waitWrites([]string{"tokyo", "saopaulo"}, site, 60*time.Second)
	newPrimary, _ := c.primaryOf("tokyo", site)
	t.Logf("majority promoted %s %v after the cut", newPrimary, time.Since(cut).Round(time.Millisecond))

	c.isolate("frankfurt", false)
	c.waitSiteStreaming(clusterNames, site, newPrimary, 120*time.Second)
	c.waitPagesEqual(clusterNames, site, 90*time.Second)
	if len(alone) > 0 {
		q, _ := filepath.Glob(filepath.Join(c.nodes["frankfurt"].base, "data", "sites", site+".db-diverged-*"))
		if len(q) == 0 {
			t.Errorf("frankfurt acknowledged %d writes alone but kept no quarantine file", len(alone))
		} else {
			// What it acknowledged alone is in the quarantined copy.
			db, err := sqlite.Open(context.Background(), sqlite.Config{Path: q[0], ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			var n int
			err = db.Reader().QueryRow("SELECT count(*) FROM acks WHERE v LIKE 'alone%'").Scan(&n)
			db.Close()
			if err != nil || n < len(alone) {
				t.Errorf("quarantine %s holds %d of the %d writes acknowledged alone (%v)", q[0], n, len(alone), err)
			}
			t.Logf("quarantined: %v (%d rows written alone)", q, n)
		}
	}
	c.checkSplitBrain(site)
}

// TestFailoverOneWayPartition: the primary still hears the others but
// nothing it sends reaches them. Whatever happens, never two writers;
// writes work again through the others.
func TestFailoverOneWayPartition(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	const site = "oneway.test"
	c := startFailover(t, clusterNames, 50*time.Millisecond, site, "frankfurt", "failback = false\n", edgeOpts{netns: true})
	for _, b := range without(clusterNames, "frankfurt") {
		c.hold("frankfurt", b, true)
	}
	// Writes from frankfurt's region until it refuses; through the others
	// until they work.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 200; i++ {
			if ok, _ := c.writeOK("frankfurt", site, fmt.Sprint("fra", i)); !ok {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	c.waitWrites([]string{"tokyo", "saopaulo"}, site, 60*time.Second)
	wg.Wait()
	for _, b := range without(clusterNames, "frankfurt") {
		c.hold("frankfurt", b, false)
	}
	c.settle(site, "")
}

// TestFailoverPausedPrimary: SIGSTOP the primary past its lease, then
// SIGCONT: whatever it was doing, it gets no write acknowledged, and
// writes sent to it are refused.
func TestFailoverPausedPrimary(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	const site = "paused.test"
	c := startFailover(t, clusterNames, 50*time.Millisecond, site, "frankfurt", "failback = false\n", edgeOpts{})
	// A write in flight on frankfurt when it freezes.
	inflight := make(chan string, 1)
	go func() {
		_, why := c.writeOK("frankfurt", site, "frozen")
		inflight <- why
	}()
	time.Sleep(20 * time.Millisecond)
	c.pause("frankfurt")
	c.waitWrites([]string{"tokyo", "saopaulo"}, site, 60*time.Second)
	newPrimary, _ := c.primaryOf("tokyo", site)
	c.resume("frankfurt")
	// At once: a write on frankfurt is refused.
	if ok, why := c.writeOK("frankfurt", site, "late"); ok {
		t.Errorf("the thawed old primary acknowledged a write: %s", why)
	}
	t.Logf("write in flight at the freeze: %s", <-inflight)
	c.settle(site, newPrimary)
}

// TestFailoverQuorumLost: with two of three nodes gone, nothing can be
// promoted; the primary stops taking writes (a clear 503 naming the
// site) and keeps serving reads; when a node comes back writes resume.
func TestFailoverQuorumLost(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	const site = "quorum.test"
	c := startFailover(t, clusterNames, 50*time.Millisecond, site, "frankfurt", "", edgeOpts{})
	c.kill9("tokyo")
	c.kill9("saopaulo")
	var why string
	testutil.RetryUntil(t, 30*time.Second, func() error {
		var ok bool
		ok, why = c.writeOK("frankfurt", site, "alone")
		if ok {
			return fmt.Errorf("frankfurt still takes writes without a quorum")
		}
		return nil
	})
	if !strings.HasPrefix(why, "503") || !strings.Contains(why, site) {
		t.Errorf("refusal without quorum: %q", why)
	}
	if code, body := c.rawGet("frankfurt", site, "/r.php"); code != 200 || !strings.Contains(body, "rows ") {
		t.Errorf("read without quorum: %d %s", code, body)
	}
	if p, _ := c.primaryOf("frankfurt", site); p != "frankfurt" {
		t.Errorf("primary without quorum: %q", p)
	}
	c.restart("tokyo")
	c.waitWrites([]string{"frankfurt"}, site, 90*time.Second)
	c.checkSplitBrain(site)
}

// TestFailoverOpenTransaction: a transaction a replica forwards to the
// primary is open when the site is handed over, and another when the
// primary dies: each client gets an error at COMMIT, and no copy holds
// half of either transaction.
func TestFailoverOpenTransaction(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	const site = "tx.test"
	c := startFailover(t, clusterNames, 50*time.Millisecond, site, "frankfurt", "failback = false\n", edgeOpts{before: func(c *edgeCluster) {
		c.siteFiles(site, map[string]string{"creds.php": sqlCredsPHP, "t.php": taggedPHP})
	}})
	db := siteDB(t, c.nodes["tokyo"].http, site)
	ctx := context.Background()
	openTx := func(tag string) *sql.Tx {
		t.Helper()
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ {
			if _, err := tx.ExecContext(ctx, "INSERT INTO acks (v) VALUES (?)", tag); err != nil {
				t.Fatalf("%s: insert %d: %v", tag, i, err)
			}
		}
		return tx
	}
	// rows counts a tag's rows on every live node once they agree.
	noHalf := func(tag string, nodes []string) {
		t.Helper()
		testutil.RetryUntil(t, 60*time.Second, func() error {
			for _, n := range nodes {
				code, body := c.rawGet(n, site, "/t.php?v="+tag)
				if code != 200 {
					return fmt.Errorf("%s: %d %s", n, code, body)
				}
				if !strings.Contains(body, "tagged 0") {
					return fmt.Errorf("%s holds rows of the failed transaction %s: %s", n, tag, body)
				}
			}
			return nil
		})
	}

	tx := openTx("tx-move")
	c.move("saopaulo", site, "saopaulo")
	if err := tx.Commit(); err == nil {
		t.Error("COMMIT of a transaction open across the hand-over succeeded")
	} else {
		t.Logf("COMMIT across the hand-over: %v", err)
	}
	noHalf("tx-move", clusterNames)

	tx = openTx("tx-kill")
	c.kill9("saopaulo")
	if err := tx.Commit(); err == nil {
		t.Error("COMMIT of a transaction open when its primary died succeeded")
	} else {
		t.Logf("COMMIT after the primary died: %v", err)
	}
	live := []string{"frankfurt", "tokyo"}
	c.waitWrites(live, site, 60*time.Second)
	noHalf("tx-kill", live)
	c.checkSplitBrain(site)
}

// TestFailoverLeaderDies: five nodes; the site's primary dies, and so
// does the raft leader while the failover is due. A new leader judges
// the lease itself (it never trusts the old leader's clock) and
// promotes a replica; never two writers.
func TestFailoverLeaderDies(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	names := []string{"frankfurt", "tokyo", "saopaulo", "virginia", "sydney"}
	const site = "leader.test"
	c := startFailover(t, names, 50*time.Millisecond, site, "virginia", "failback = false\n", edgeOpts{})
	leader := c.status("tokyo").Leader
	if leader == "" || leader == "virginia" {
		t.Fatalf("leader %q (the voters are the first three nodes)", leader)
	}
	c.kill9("virginia")
	// The lease (5 s) is about to lapse: the leader dies too.
	time.Sleep(4 * time.Second)
	c.kill9(leader)
	live := without(without(names, "virginia"), leader)
	start := time.Now()
	c.waitWrites(live, site, 90*time.Second)
	p, epoch := c.primaryOf(live[0], site)
	t.Logf("leader %s died 4 s after the primary; %s promoted (epoch %d); writes through %v work %v later", leader, p, epoch, live, time.Since(start).Round(time.Millisecond))
	c.checkSplitBrain(site)
}

// TestFailoverWordPress: a WordPress site whose primary dies: authors in
// the other regions keep publishing (XML-RPC through tokyo) once the
// lease lapsed, readers everywhere see the posts from before and after,
// and the old primary, back, serves them too.
func TestFailoverWordPress(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	const site = "wp.test"
	c := startFailover(t, clusterNames, 50*time.Millisecond, site, "frankfurt", "failback = false\n", edgeOpts{before: func(c *edgeCluster) {
		tree := wordpressTree(c.t, false)
		for _, name := range c.names {
			if err := copyDir(tree, filepath.Join(c.nodes[name].sitesDir, site)); err != nil {
				c.t.Fatal(err)
			}
		}
	}})
	c.client("saopaulo", site).install("Failover Blog")
	publish := func(node, title string) string {
		t.Helper()
		out := c.client(node, site).xmlrpc("wp.newPost", "<int>1</int>", xs("admin"), xs("correct horse battery"),
			`<struct><member><name>post_title</name><value>`+xs(title)+`</value></member>
<member><name>post_content</name><value>`+xs("Written through "+node+".")+`</value></member>
<member><name>post_status</name><value>`+xs("publish")+`</value></member></struct>`)
		m := intRe.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("newPost through %s: %s", node, out)
		}
		return m[1]
	}
	shows := func(node, id, title string) {
		t.Helper()
		waitFor(t, node+" shows "+title, func() (bool, string) {
			code, body := c.rawGet(node, site, "/?p="+id)
			return code == 200 && strings.Contains(body, title), fmt.Sprint(code, " ", tail(body, 3))
		})
	}
	before := publish("tokyo", "Before the failover")
	shows("saopaulo", before, "Before the failover")

	c.kill9("frankfurt")
	c.waitWrites([]string{"tokyo"}, site, 60*time.Second)
	after := publish("tokyo", "After the failover")
	for _, n := range []string{"tokyo", "saopaulo"} {
		shows(n, before, "Before the failover")
		shows(n, after, "After the failover")
	}
	c.restart("frankfurt")
	p, _ := c.primaryOf("tokyo", site)
	c.waitSiteStreaming(clusterNames, site, p, 120*time.Second)
	shows("frankfurt", after, "After the failover")
	c.checkSplitBrain(site)
}

// TestFailoverReplicaPastRetention: a replica stopped while its primary
// compacts its log past the replica's position comes back and repairs
// by page diff (not a full snapshot), and ends equal to the primary.
func TestFailoverReplicaPastRetention(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	const site = "retention.test"
	c := startFailover(t, clusterNames, 50*time.Millisecond, site, "frankfurt", "",
		edgeOpts{env: []string{"EPHPM_REPLICATION__COMPACT_FRAMES=32"}})
	c.stop("tokyo")
	for i := 0; i < 80; i++ {
		if ok, why := c.writeOK("frankfurt", site, fmt.Sprint("while-away-", i)); !ok {
			t.Fatalf("write %d: %s", i, why)
		}
	}
	testutil.RetryUntil(t, 30*time.Second, func() error {
		if !strings.Contains(c.logs("frankfurt"), "replication log compacted") {
			return fmt.Errorf("frankfurt's log has not compacted yet")
		}
		return nil
	})
	c.restart("tokyo")
	c.waitSiteStreaming(clusterNames, site, "frankfurt", 120*time.Second)
	c.waitPagesEqual(clusterNames, site, 60*time.Second)
	logs := c.logs("tokyo")
	if !strings.Contains(logs, "replica repaired by page diff") {
		t.Errorf("tokyo did not repair by page diff:\n%s", tail(logs, 30))
	}
	if strings.Contains(logs[strings.LastIndex(logs, "restarted"):], "bootstrapping from the primary's snapshot") {
		t.Error("tokyo copied the whole snapshot to come back")
	}
	c.checkSplitBrain(site)
}
