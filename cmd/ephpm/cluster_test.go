package main_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ephpm/ephpm/config"
	"github.com/ephpm/ephpm/internal/testutil"
	"github.com/ephpm/ephpm/sqlite"
)

// The edge cluster harness (issue 14): N real ephpm processes with
// [cluster] on, each binding gossip, raft and replication on loopback
// ports and advertising "public addresses": one delaying proxy per node
// and per service (gossip TCP+UDP on one port, raft, replication), so
// every hop between two nodes crosses one proxy and every pair sees a
// round trip of twice the one-way delay. Clients of a node's HTTP port
// and the operator's CLI reach it directly (they are in its region).

const clusterSecret = "edge-cluster-test-secret-0123456789"

// edgeRegions labels the nodes' regions (free text in status).
var edgeRegions = map[string]string{
	"frankfurt": "eu", "tokyo": "ap", "saopaulo": "sa", "virginia": "us", "sydney": "au", "mumbai": "in", "intruder": "xx",
}

type edgeNode struct {
	name, region       string
	base, sitesDir     string
	cfg                string // ephpm.toml
	http               string // [server] listen
	gossip, raft, repl string // real binds
	mysql, kv          string
	secret             string
	gossipPx           *testutil.GossipProxy // its public gossip address (TCP+UDP)
	raftPx, replPx     *testutil.DelayProxy
	ip                 string // its own IP (NetLab), "" on loopback
	idx                int    // its NetLab namespace
	p                  *proc
	oldLogs            string // the previous runs' output
}

type edgeCluster struct {
	t     testing.TB
	delay time.Duration
	nodes map[string]*edgeNode
	names []string // in start order
	join  []string // the first three nodes' public gossip addresses
	lab   *testutil.NetLab
	env   []string // extra environment of every node
	extra string   // appended to every ephpm.toml
}

type edgeOpts struct {
	// noStart builds the nodes' files without starting them.
	noStart bool
	// before runs after the node directories exist, before any starts
	// (site files on disk).
	before func(c *edgeCluster)
	// netns puts every node in a network namespace of its own
	// (testutil.NetLab): the proxies then know which node sends what,
	// and cut/heal can hold one link, one way or both.
	netns bool
	// env is added to every node's environment.
	env []string
	// extra is appended to every node's ephpm.toml.
	extra string
}

// newEdgeCluster starts one ephpm per name, the first three being the
// seeds (join) and the directory's voters.
func newEdgeCluster(t testing.TB, names []string, delay time.Duration, opts edgeOpts) *edgeCluster {
	t.Helper()
	testutil.NeedProgram(t, "php")
	testutil.NeedProgram(t, "php-fpm8.2", "php-fpm")
	c := &edgeCluster{t: t, delay: delay, nodes: map[string]*edgeNode{}, env: opts.env, extra: opts.extra}
	if opts.netns {
		if why := testutil.NetLabUsable(); why != "" {
			t.Fatalf("fault tests need network namespaces: %s", why)
		}
		c.lab = testutil.NewNetLab(t, len(names))
	}
	base := testutil.WorldReadableDir(t)
	for _, name := range names {
		c.addNode(base, name, clusterSecret)
	}
	for _, name := range names[:min(3, len(names))] {
		c.join = append(c.join, c.nodes[name].gossipPx.Addr)
	}
	for _, name := range names {
		c.writeConfig(c.nodes[name])
	}
	t.Cleanup(c.dumpLogsOnFailure)
	if opts.before != nil {
		opts.before(c)
	}
	if !opts.noStart {
		for _, name := range names {
			c.start(name)
		}
		for _, name := range names {
			c.waitUp(name)
		}
	}
	return c
}

// addNode allocates a node's ports and its public (proxied) addresses.
func (c *edgeCluster) addNode(base, name, secret string) *edgeNode {
	region := edgeRegions[name]
	if region == "" {
		region = "zz"
	}
	n := &edgeNode{name: name, region: region, base: filepath.Join(base, name), secret: secret,
		http: lowPort(c.t), gossip: testutil.FreeLowPort(c.t, true), raft: lowPort(c.t), repl: lowPort(c.t),
		mysql: lowPort(c.t), kv: lowPort(c.t), idx: len(c.names)}
	pxHost := "127.0.0.1"
	if c.lab != nil {
		// Its services on its own IP, inside its namespace; its public
		// addresses (the proxies) on its gateway, in the test's.
		ln := c.lab.Node(n.idx)
		n.ip, pxHost = ln.IP, ln.Gateway
		for _, a := range []*string{&n.http, &n.gossip, &n.raft, &n.repl} {
			*a = net.JoinHostPort(n.ip, strconv.Itoa(testutil.PortOf(*a)))
		}
	}
	n.sitesDir = filepath.Join(n.base, "sites")
	n.cfg = filepath.Join(n.base, "ephpm.toml")
	for _, d := range []string{n.sitesDir, filepath.Join(n.base, "data")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			c.t.Fatal(err)
		}
	}
	n.gossipPx = testutil.NewDelayGossipProxyOn(c.t, pxHost, n.gossip, c.delay)
	var err error
	if n.raftPx, err = testutil.ListenDelayProxy(c.t, pxHost+":0", n.raft, c.delay); err != nil {
		c.t.Fatal(err)
	}
	if n.replPx, err = testutil.ListenDelayProxy(c.t, pxHost+":0", n.repl, c.delay); err != nil {
		c.t.Fatal(err)
	}
	c.nodes[name] = n
	c.names = append(c.names, name)
	return n
}

// lowPort is a node's port (kept across its restarts): below the
// ephemeral range, where no outgoing connection of the proxies takes it.
func lowPort(t testing.TB) string { return testutil.FreeLowPort(t, false) }

// writeConfig is the edge document's node config, adapted only in
// addresses (and the test's data and PHP settings).
func (c *edgeCluster) writeConfig(n *edgeNode) {
	var join []string
	for _, j := range c.join {
		join = append(join, fmt.Sprintf("%q", j))
	}
	cfg := fmt.Sprintf(`[server]
listen = %q
sites_dir = %q
data_dir = %q

[php]
workers = 3

[db.sqlite.proxy]
enabled = true
mysql_listen = %q

[kv]
enabled = true
listen = %q

[cluster]
enabled = true
bind = %q
advertise = %q
raft_bind = %q
raft_advertise = %q
join = [%s]
secret = %q
node = %q
region = %q

[replication]
listen = %q
advertise = "http://%s"
`, n.http, n.sitesDir, filepath.Join(n.base, "data"), n.mysql, n.kv,
		n.gossip, n.gossipPx.Addr, n.raft, n.raftPx.Addr, strings.Join(join, ", "), n.secret, n.name, n.region,
		n.repl, n.replPx.Addr)
	cfg += c.extra
	if err := os.WriteFile(n.cfg, []byte(cfg), 0o644); err != nil {
		c.t.Fatal(err)
	}
}

// start runs a node's ephpm (without waiting for anything).
func (c *edgeCluster) start(name string) {
	n := c.nodes[name]
	p := &proc{addr: n.http, runDir: filepath.Join(testutil.WorldReadableDir(c.t), "run"), out: &syncBuilder{}, done: make(chan error, 1)}
	p.cmd = exec.Command(binary, "serve", "--config", n.cfg)
	if c.lab != nil {
		p.cmd = c.lab.Command(n.idx, binary, "serve", "--config", n.cfg)
	}
	p.cmd.Dir = n.base
	p.cmd.Env = append(os.Environ(), "EPHPM_SERVER__RUNTIME_DIR="+p.runDir, "EPHPM_WP_DISABLE_CRON=1")
	p.cmd.Env = append(p.cmd.Env, c.env...)
	pr, pw := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = pw, pw
	go func() {
		s := bufio.NewScanner(pr)
		s.Buffer(make([]byte, 64<<10), 1<<20)
		for s.Scan() {
			p.out.WriteString(s.Text() + "\n")
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	if err := p.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait(); pw.Close() }()
	c.t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
		_ = p.cmd.Process.Kill()
		exited(p, 10*time.Second)
	})
	if n.p != nil {
		n.oldLogs += n.p.out.String() + strings.Repeat("=", 20) + " restarted\n"
	}
	n.p = p
}

// logs is a node's output, every run.
func (c *edgeCluster) logs(name string) string {
	n := c.nodes[name]
	if n.p == nil {
		return n.oldLogs
	}
	return n.oldLogs + n.p.out.String()
}

// waitUp waits until a node's HTTP port answers (ready or not).
func (c *edgeCluster) waitUp(name string) {
	c.t.Helper()
	p := c.nodes[name].p
	testutil.RetryUntil(c.t, 60*time.Second, func() error {
		select {
		case err := <-p.done:
			p.done <- err
			c.t.Fatalf("%s exited: %v\n%s", name, err, tail(p.out.String(), 60))
		default:
		}
		resp, err := http.Get("http://" + p.addr + "/_ephpm/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
}

// ready is a node's /_ephpm/ready status code.
func (c *edgeCluster) ready(name string) int {
	resp, err := http.Get("http://" + c.nodes[name].http + "/_ephpm/ready")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// stop sends SIGTERM and waits for the exit.
func (c *edgeCluster) stop(name string) {
	c.t.Helper()
	p := c.nodes[name].p
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if !exited(p, 30*time.Second) {
		c.t.Fatalf("%s did not exit after SIGTERM:\n%s", name, tail(p.out.String(), 40))
	}
}

// kill9 kills a node with SIGKILL and waits for it.
func (c *edgeCluster) kill9(name string) {
	c.t.Helper()
	p := c.nodes[name].p
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	if !exited(p, 10*time.Second) {
		c.t.Fatalf("%s did not die", name)
	}
}

// exited waits for p's exit, leaving it to be seen again.
func exited(p *proc, timeout time.Duration) bool {
	select {
	case err := <-p.done:
		p.done <- err
		return true
	case <-time.After(timeout):
		return false
	}
}

// hold holds (on) or releases everything node a sends to node b, one
// way: a's connections and datagrams toward b, and a's answers on b's
// connections to a. Needs edgeOpts.netns.
func (c *edgeCluster) hold(a, b string, on bool) {
	c.t.Helper()
	na, nb := c.nodes[a], c.nodes[b]
	if na.ip == "" || nb.ip == "" {
		c.t.Fatal("hold needs edgeOpts.netns")
	}
	nb.gossipPx.Hold(na.ip, testutil.ToTarget, on)
	nb.raftPx.Hold(na.ip, testutil.ToTarget, on)
	nb.replPx.Hold(na.ip, testutil.ToTarget, on)
	na.gossipPx.Hold(nb.ip, testutil.FromTarget, on)
	na.raftPx.Hold(nb.ip, testutil.FromTarget, on)
	na.replPx.Hold(nb.ip, testutil.FromTarget, on)
}

// isolate cuts (on) or heals node a's links with every other node, both
// ways.
func (c *edgeCluster) isolate(a string, on bool) {
	c.t.Helper()
	for _, b := range c.names {
		if b != a {
			c.hold(a, b, on)
			c.hold(b, a, on)
		}
	}
}

// pause freezes a node (SIGSTOP): it holds its sockets but answers
// nothing; resume (SIGCONT) thaws it.
func (c *edgeCluster) pause(name string)  { _ = c.nodes[name].p.cmd.Process.Signal(syscall.SIGSTOP) }
func (c *edgeCluster) resume(name string) { _ = c.nodes[name].p.cmd.Process.Signal(syscall.SIGCONT) }

// restart starts a stopped or killed node again with the same config
// and waits until its HTTP port answers.
func (c *edgeCluster) restart(name string) {
	c.t.Helper()
	c.start(name)
	c.waitUp(name)
}

func (c *edgeCluster) token(name string) string {
	return config.DeriveKey(c.nodes[name].secret, "replication token")
}

// api calls a node's cluster endpoint on its replication listener.
func (c *edgeCluster) api(name, method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://"+c.nodes[name].repl+path, rd)
	req.Header.Set("Authorization", "Bearer "+c.token(name))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

type memberStatus struct {
	Name     string `json:"name"`
	Region   string `json:"region"`
	State    string `json:"state"`
	Gossip   string `json:"gossip"`
	Raft     string `json:"raft"`
	HTTP     string `json:"http"`
	Repl     string `json:"repl"`
	Version  string `json:"version"`
	RaftRole string `json:"raft_role"`
}

type siteNodeStatus struct {
	Role      string  `json:"role"`
	Position  int64   `json:"position"`
	State     string  `json:"state"`
	LagFrames int64   `json:"lag_frames"`
	LagMs     float64 `json:"lag_ms"`
}

type siteStatus struct {
	Name    string                    `json:"name"`
	Primary string                    `json:"primary"`
	Epoch   uint64                    `json:"epoch"`
	State   string                    `json:"state"`
	Nodes   map[string]siteNodeStatus `json:"nodes"`
}

type clusterStatus struct {
	Node         string         `json:"node"`
	Leader       string         `json:"leader"`
	RaftState    string         `json:"raft_state"`
	Term         uint64         `json:"term"`
	CommitIndex  uint64         `json:"commit_index"`
	AppliedIndex uint64         `json:"applied_index"`
	Ready        bool           `json:"ready"`
	NotReady     string         `json:"not_ready"`
	Members      []memberStatus `json:"members"`
	Sites        []siteStatus   `json:"sites"`
}

func (s *clusterStatus) member(name string) *memberStatus {
	for i := range s.Members {
		if s.Members[i].Name == name {
			return &s.Members[i]
		}
	}
	return nil
}

func (s *clusterStatus) site(name string) *siteStatus {
	for i := range s.Sites {
		if s.Sites[i].Name == name {
			return &s.Sites[i]
		}
	}
	return nil
}

// directory is the sites part of a status, comparable between nodes:
// "name primary epoch state" lines, sorted.
func (s *clusterStatus) directory() string {
	var lines []string
	for _, site := range s.Sites {
		lines = append(lines, fmt.Sprintf("%s %s %d %s", site.Name, site.Primary, site.Epoch, site.State))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// statusErr is a node's cluster status.
func (c *edgeCluster) statusErr(name string) (*clusterStatus, error) {
	code, b, err := c.api(name, "GET", "/_ephpm/cluster/v1/status", nil)
	if err != nil {
		return nil, err
	}
	if code != 200 {
		return nil, fmt.Errorf("%s status: %d %.300s", name, code, b)
	}
	var s clusterStatus
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s status: %v: %.300s", name, err, b)
	}
	return &s, nil
}

func (c *edgeCluster) status(name string) *clusterStatus {
	c.t.Helper()
	s, err := c.statusErr(name)
	if err != nil {
		c.t.Fatal(err)
	}
	return s
}

// waitMembers waits until every node of names lists exactly names as
// alive members and they agree on one leader; it returns the leader.
func (c *edgeCluster) waitMembers(names []string, timeout time.Duration) string {
	c.t.Helper()
	want := append([]string(nil), names...)
	sort.Strings(want)
	var leader string
	testutil.RetryUntil(c.t, timeout, func() error {
		leader = ""
		for _, name := range names {
			s, err := c.statusErr(name)
			if err != nil {
				return err
			}
			var alive []string
			for _, m := range s.Members {
				if m.State == "alive" {
					alive = append(alive, m.Name)
				}
			}
			sort.Strings(alive)
			if strings.Join(alive, ",") != strings.Join(want, ",") {
				return fmt.Errorf("%s sees alive %v, want %v (members %+v)", name, alive, want, s.Members)
			}
			if s.Leader == "" || !s.Ready {
				return fmt.Errorf("%s: leader %q, ready %v %s (raft %s)", name, s.Leader, s.Ready, s.NotReady, s.RaftState)
			}
			if leader == "" {
				leader = s.Leader
			} else if s.Leader != leader {
				return fmt.Errorf("%s follows %s, another node %s", name, s.Leader, leader)
			}
		}
		return nil
	})
	return leader
}

// waitDirectory waits until every node of names shows the same sites,
// and that want (if not "") is that directory; it returns it.
func (c *edgeCluster) waitDirectory(names []string, want string, timeout time.Duration) string {
	c.t.Helper()
	var dir string
	testutil.RetryUntil(c.t, timeout, func() error {
		dir = ""
		for i, name := range names {
			s, err := c.statusErr(name)
			if err != nil {
				return err
			}
			d := s.directory()
			if i == 0 {
				dir = d
			} else if d != dir {
				return fmt.Errorf("%s's directory:\n%s\ndiffers from %s's:\n%s", name, d, names[0], dir)
			}
		}
		if want != "" && dir != want {
			return fmt.Errorf("directory:\n%s\nwant:\n%s", dir, want)
		}
		return nil
	})
	return dir
}

// cli runs `ephpm ARGS --config <node's ephpm.toml>`.
func (c *edgeCluster) cli(name string, args ...string) (int, string) {
	c.t.Helper()
	return run(c.t, append(args, "--config", c.nodes[name].cfg)...)
}

// createSite runs `ephpm sites create NAME --primary PRIMARY` on a node.
func (c *edgeCluster) createSite(on, site, primary string) {
	c.t.Helper()
	// A node registers itself in the directory's nodes table a moment
	// after it sees the leader: until then it is an unknown primary.
	testutil.RetryUntil(c.t, 30*time.Second, func() error {
		code, out := c.cli(on, "sites", "create", site, "--primary", primary)
		if code == 0 {
			return nil
		}
		err := fmt.Errorf("sites create %s --primary %s on %s: %d %s", site, primary, on, code, out)
		if !strings.Contains(out, "unknown node") {
			c.t.Fatal(err)
		}
		return err
	})
}

// move runs `ephpm sites move NAME --to NODE` on a node.
func (c *edgeCluster) move(on, site, to string) string {
	c.t.Helper()
	code, out := c.cli(on, "sites", "move", site, "--to", to)
	if code != 0 {
		c.t.Fatalf("sites move %s --to %s on %s: %d %s", site, to, on, code, out)
	}
	return out
}

// client is a browser of one site through one node.
func (c *edgeCluster) client(node, site string) *wpClient {
	addr := c.nodes[node].http
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	}, MaxIdleConnsPerHost: 64}
	c.t.Cleanup(tr.CloseIdleConnections)
	return &wpClient{t: c.t, base: "http://" + site, c: &http.Client{Jar: jar, Transport: tr, Timeout: 60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// siteFiles writes a small PHP site (no site.toml) into every node's
// sites_dir (or the nodes given).
func (c *edgeCluster) siteFiles(site string, files map[string]string, nodes ...string) {
	c.t.Helper()
	if len(nodes) == 0 {
		nodes = c.names
	}
	for _, name := range nodes {
		dir := filepath.Join(c.nodes[name].sitesDir, site)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			c.t.Fatal(err)
		}
		for f, body := range files {
			if err := os.WriteFile(filepath.Join(dir, f), []byte(body), 0o644); err != nil {
				c.t.Fatal(err)
			}
		}
	}
}

func (c *edgeCluster) dbPath(node, site string) string {
	return filepath.Join(c.nodes[node].base, "data", "sites", site+".db")
}

// ackRows checks that node's copy of site holds every acknowledged row
// with the value it was written with.
func (c *edgeCluster) ackRows(node, site string, acked map[int]string) error {
	db, err := sqlite.Open(context.Background(), sqlite.Config{Path: c.dbPath(node, site), ReadOnly: true})
	if err != nil {
		return err
	}
	defer db.Close()
	for id, v := range acked {
		var got string
		if err := db.Reader().QueryRow("SELECT v FROM acks WHERE id = ?", id).Scan(&got); err != nil || got != v {
			return fmt.Errorf("%s: acknowledged row %d (%q) is %q (%v)", node, id, v, got, err)
		}
	}
	return nil
}

func (c *edgeCluster) dumpLogsOnFailure() {
	if !c.t.Failed() && os.Getenv("EPHPM_TEST_LOGS_ALL") == "" {
		return
	}
	dir := os.Getenv("EPHPM_TEST_LOGS")
	for _, name := range c.names {
		if c.nodes[name].p == nil {
			continue
		}
		out := c.logs(name)
		if dir != "" {
			d := filepath.Join(dir, strings.ReplaceAll(c.t.Name(), "/", "_"))
			_ = os.MkdirAll(d, 0o755)
			_ = os.WriteFile(filepath.Join(d, name+".log"), []byte(out), 0o644)
			continue
		}
		c.t.Logf("== %s (last lines; set EPHPM_TEST_LOGS=DIR for all)\n%s", name, tail(out, 40))
	}
}

// The sites of the cluster tests: the writer and reader of
// replication_test.go, a counter.
var edgeSitePHP = map[string]string{"w.php": writerPHP, "r.php": readerPHP, "index.php": "<?php echo 'site ', $_SERVER['HTTP_HOST'];\n"}

const clusterSiteToml = "[db.sqlite.replication]\nprimary = %q\n"

// parseAcks reads the ids of the writer's "ack ID" lines.
func parseAcks(body string) []int {
	var ids []int
	for _, l := range strings.Split(body, "\n") {
		var id int
		if _, err := fmt.Sscanf(l, "ack %d", &id); err == nil {
			ids = append(ids, id)
		}
	}
	return ids
}

// loadResult is what a write load saw.
type loadResult struct {
	mu       sync.Mutex
	acked    map[int]string // id → the value its request wrote
	byReq    map[int]int    // request index → rows acknowledged
	dups     []string       // ids acknowledged to two requests
	failed   int
	codes    map[int]int // failed requests by HTTP status (0: no response)
	firstErr []string
}

// writeLoad sends total POST requests through node, each inserting rows
// rows into site's acks table (tagged with the request), rate requests
// a second, at most 64 in flight. Bounded: total requests, each at most
// 60 s. issued is called with each request's index as it is sent; no
// request is sent once stop (if not nil) is closed.
func (c *edgeCluster) writeLoad(node, site string, rate float64, total, rows int, issued func(i int), stop <-chan struct{}) *loadResult {
	res := &loadResult{acked: map[int]string{}, byReq: map[int]int{}, codes: map[int]int{}}
	addr := c.nodes[node].http
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	}, MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 60 * time.Second}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	for i := 0; i < total; i++ {
		select {
		case <-tick.C:
		case <-stop:
			i = total
			continue
		}
		sem <- struct{}{}
		if issued != nil {
			issued(i)
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			v := fmt.Sprintf("r%d", i)
			resp, err := hc.Post(fmt.Sprintf("http://%s/w.php?n=%d&v=%s", site, rows, v), "text/plain", nil)
			var body []byte
			if err == nil {
				body, _ = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			ids := parseAcks(string(body))
			res.mu.Lock()
			defer res.mu.Unlock()
			for _, id := range ids {
				if prev, ok := res.acked[id]; ok && prev != v {
					res.dups = append(res.dups, fmt.Sprintf("id %d acknowledged to %s and %s", id, prev, v))
				}
				res.acked[id] = v
			}
			res.byReq[i] = len(ids)
			if err != nil || resp.StatusCode != 200 || len(ids) != rows {
				res.failed++
				code := 0
				if err == nil {
					code = resp.StatusCode
				}
				res.codes[code]++
				if len(res.firstErr) < 5 {
					res.firstErr = append(res.firstErr, fmt.Sprintf("request %d: %d %v %.200s", i, code, err, body))
				}
			}
		}(i)
	}
	wg.Wait()
	return res
}

// waitSiteStreaming waits until every node of names serves site: the
// primary is the one wanted, every other node streams from it, and
// /_ephpm/ready is 200.
func (c *edgeCluster) waitSiteStreaming(names []string, site, primary string, timeout time.Duration) {
	c.t.Helper()
	testutil.RetryUntil(c.t, timeout, func() error {
		for _, name := range names {
			s, err := c.statusErr(name)
			if err != nil {
				return err
			}
			st := s.site(site)
			if st == nil {
				return fmt.Errorf("%s does not list %s: %+v", name, site, s.Sites)
			}
			if st.Primary != primary {
				return fmt.Errorf("%s: %s's primary is %q, want %q", name, site, st.Primary, primary)
			}
			me, ok := st.Nodes[name]
			if !ok {
				return fmt.Errorf("%s: %s has no entry for this node: %+v", name, site, st.Nodes)
			}
			if name == primary && me.Role != "primary" {
				return fmt.Errorf("%s: role %q for %s, want primary", name, me.Role, site)
			}
			if name != primary && (me.Role != "replica" || me.State != "streaming") {
				return fmt.Errorf("%s: %s is %s/%s, want replica/streaming", name, site, me.Role, me.State)
			}
			if code := c.ready(name); code != 200 {
				return fmt.Errorf("%s: /_ephpm/ready %d", name, code)
			}
		}
		return nil
	})
}

func without(names []string, drop string) []string {
	var out []string
	for _, n := range names {
		if n != drop {
			out = append(out, n)
		}
	}
	return out
}

// ---- tests ----

func TestClusterMembersConverge(t *testing.T) {
	testClusterConverge(t, clusterNames)
}

func TestClusterMembersConvergeFive(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	testClusterConverge(t, []string{"frankfurt", "tokyo", "saopaulo", "virginia", "sydney"})
}

func testClusterConverge(t *testing.T, names []string) {
	c := newEdgeCluster(t, names, regionDelay, edgeOpts{})
	leader := c.waitMembers(names, 90*time.Second)
	voters := 0
	for _, name := range names {
		s := c.status(name)
		if s.Node != name {
			t.Errorf("%s's status says node %q", name, s.Node)
		}
		if (strings.EqualFold(s.RaftState, "leader")) != (name == leader) {
			t.Errorf("%s: raft state %q, the leader is %s", name, s.RaftState, leader)
		}
		if s.Term == 0 || s.CommitIndex == 0 {
			t.Errorf("%s: term %d commit index %d", name, s.Term, s.CommitIndex)
		}
		for _, m := range s.Members {
			n := c.nodes[m.Name]
			if n == nil {
				t.Errorf("%s lists an unknown member %+v", name, m)
				continue
			}
			// Every node knows the others by their public addresses.
			if m.Gossip != n.gossipPx.Addr || m.Raft != n.raftPx.Addr || strings.TrimSuffix(m.Repl, "/") != "http://"+n.replPx.Addr || m.Region != n.region {
				t.Errorf("%s knows %s as %+v, want gossip %s raft %s repl http://%s region %s", name, m.Name, m, n.gossipPx.Addr, n.raftPx.Addr, n.replPx.Addr, n.region)
			}
			if m.Version == "" {
				t.Errorf("%s: no version for %s", name, m.Name)
			}
			if name == names[0] && m.RaftRole == "voter" {
				voters++
			}
		}
		if name == names[0] {
			// The first three of join vote; the others follow.
			for i, m := range names {
				want := "voter"
				if i >= 3 {
					want = "nonvoter"
				}
				if got := s.member(m); got != nil && got.RaftRole != want {
					t.Errorf("%s is %q, want %q", m, got.RaftRole, want)
				}
			}
		}
	}
	if voters != min(3, len(names)) {
		t.Errorf("%d voters", voters)
	}
	// Gossip (UDP probes; TCP joins and push/pull, to the seeds at
	// least) and raft cross the proxies: the nodes use the advertised
	// addresses.
	seedTCP := 0
	for i, name := range names {
		n := c.nodes[name]
		if i < 3 {
			seedTCP += int(n.gossipPx.TCP.Accepted())
		}
		if n.gossipPx.UDP.Forwarded() == 0 {
			t.Errorf("%s's gossip proxy: no datagrams", name)
		}
		if name != leader && n.raftPx.Accepted() == 0 {
			t.Errorf("the leader never reached %s's raft through its public address", name)
		}
	}
	if seedTCP == 0 {
		t.Error("no gossip TCP (join, push/pull) through the seeds' public addresses")
	}
	// One directory: a site created on the last node is on every node.
	c.createSite(names[len(names)-1], "converge.test", names[0])
	dir := c.waitDirectory(names, "", 60*time.Second)
	if !strings.HasPrefix(dir, "converge.test "+names[0]+" ") {
		t.Fatalf("directory after create:\n%s", dir)
	}
	// The CLI shows the same.
	code, out := c.cli(names[1], "cluster", "status", "--json")
	var s clusterStatus
	if err := json.Unmarshal([]byte(out), &s); code != 0 || err != nil || len(s.Members) != len(names) || s.directory() != dir {
		t.Fatalf("cluster status --json: %d %v %.2000s", code, err, out)
	}
	code, out = c.cli(names[1], "cluster", "status")
	for _, name := range append(names, "converge.test") {
		if code != 0 || !strings.Contains(out, name) {
			t.Fatalf("cluster status lacks %s: %d %s", name, code, out)
		}
	}
	// Removal asks for --yes, then takes the site off every node.
	if code, out := c.cli(names[1], "sites", "remove", "converge.test"); code == 0 {
		t.Fatalf("sites remove without --yes: %d %s", code, out)
	}
	if code, out := c.cli(names[1], "sites", "remove", "converge.test", "--yes"); code != 0 {
		t.Fatalf("sites remove: %d %s", code, out)
	}
	testutil.RetryUntil(t, 60*time.Second, func() error {
		for _, name := range names {
			s, err := c.statusErr(name)
			if err != nil {
				return err
			}
			if st := s.site("converge.test"); st != nil && st.State != "removed" {
				return fmt.Errorf("%s: converge.test is %q", name, st.State)
			}
		}
		return nil
	})
}

// TestClusterReplicaFindsPrimaryWithoutURL: one site.toml naming the
// primary node, the same on every node; no URL anywhere.
func TestClusterReplicaFindsPrimaryWithoutURL(t *testing.T) {
	const site = "shop.test"
	toml := fmt.Sprintf(clusterSiteToml, "frankfurt")
	c := newEdgeCluster(t, clusterNames, regionDelay, edgeOpts{before: func(c *edgeCluster) {
		c.siteFiles(site, map[string]string{"w.php": writerPHP, "r.php": readerPHP, "site.toml": toml})
	}})
	c.waitMembers(clusterNames, 90*time.Second)
	c.waitSiteStreaming(clusterNames, site, "frankfurt", 90*time.Second)

	acked := map[int]string{}
	// A POST through tokyo runs whole on frankfurt.
	resp, body := c.client("tokyo", site).req("POST", "/w.php?n=5&v=via-tokyo", nil, "", "")
	ids := parseAcks(body)
	if resp.StatusCode != 200 || len(ids) != 5 {
		t.Fatalf("writes through tokyo: %d %.500s", resp.StatusCode, body)
	}
	for _, id := range ids {
		acked[id] = "via-tokyo"
	}
	// A GET through saopaulo forwards its statements to frankfurt.
	code, body := c.client("saopaulo", site).get("/w.php?n=3&v=via-saopaulo")
	ids = parseAcks(body)
	if code != 200 || len(ids) != 3 {
		t.Fatalf("writes through saopaulo: %d %.500s", code, body)
	}
	for _, id := range ids {
		acked[id] = "via-saopaulo"
	}
	if err := c.ackRows("frankfurt", site, acked); err != nil {
		t.Fatalf("the writes are not on the primary: %v", err)
	}
	for _, name := range clusterNames {
		testutil.RetryUntil(t, 60*time.Second, func() error { return c.ackRows(name, site, acked) })
		cl := c.client(name, site)
		waitFor(t, name+" reads 8 rows", func() (bool, string) {
			code, body := cl.get("/r.php")
			return code == 200 && body == "rows 8", fmt.Sprint(code, " ", body)
		})
	}
	// Nobody wrote a URL into the site's file.
	for _, name := range clusterNames {
		b, err := os.ReadFile(filepath.Join(c.nodes[name].sitesDir, site, "site.toml"))
		if err != nil || string(b) != toml {
			t.Errorf("%s's site.toml changed: %q %v", name, b, err)
		}
	}
}

// TestClusterSiteCreatedOnOneNodeServedOnAll: the WordPress files are on
// every node; `ephpm sites create` on one node makes it a cluster site
// everywhere.
func TestClusterSiteCreatedOnOneNodeServedOnAll(t *testing.T) {
	const site = "blog.test"
	c := newEdgeCluster(t, clusterNames, regionDelay, edgeOpts{before: func(c *edgeCluster) {
		tree := wordpressTree(c.t, false)
		for _, name := range c.names {
			if err := copyDir(tree, filepath.Join(c.nodes[name].sitesDir, site)); err != nil {
				c.t.Fatal(err)
			}
		}
	}})
	c.waitMembers(clusterNames, 90*time.Second)
	c.createSite("frankfurt", site, "frankfurt")
	want := fmt.Sprintf(clusterSiteToml, "frankfurt")
	for _, name := range clusterNames {
		path := filepath.Join(c.nodes[name].sitesDir, site, "site.toml")
		testutil.RetryUntil(t, 60*time.Second, func() error {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if !strings.Contains(string(b), strings.TrimSpace(strings.Split(want, "\n")[1])) {
				return fmt.Errorf("%s's site.toml: %q", name, b)
			}
			return nil
		})
	}
	c.waitSiteStreaming(clusterNames, site, "frankfurt", 90*time.Second)

	sp := c.client("saopaulo", site)
	sp.install("Edge Cluster Blog")
	for _, name := range clusterNames {
		cl := c.client(name, site)
		waitFor(t, name+" shows the blog", func() (bool, string) {
			resp, body := cl.req("GET", "/", nil, "", "")
			return resp.StatusCode == 200 && strings.Contains(body, "Edge Cluster Blog"), fmt.Sprint(resp.StatusCode, " ", resp.Header.Get("Location"), " ", tail(body, 5))
		})
	}

	// A site whose files are on no node: the nodes learn it, answer 503.
	c.createSite("tokyo", "nofiles.test", "frankfurt")
	cl := c.client("tokyo", "nofiles.test")
	waitFor(t, "tokyo answers 503 for a site without files", func() (bool, string) {
		resp, body := cl.req("GET", "/", nil, "", "")
		return resp.StatusCode == 503 && strings.Contains(body, "not on this node"), fmt.Sprint(resp.StatusCode, " ", body)
	})
}

// TestClusterMoveUnderLoad: `ephpm sites move` in the middle of 100
// writes a second through a replica region; no acknowledged write is
// lost, none is acknowledged twice, and writes go on.
func TestClusterMoveUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	const site = "shop.test"
	c := newEdgeCluster(t, clusterNames, 125*time.Millisecond, edgeOpts{before: func(c *edgeCluster) {
		c.siteFiles(site, map[string]string{"w.php": writerPHP, "r.php": readerPHP})
	}})
	c.waitMembers(clusterNames, 120*time.Second)
	c.createSite("frankfurt", site, "frankfurt")
	c.waitSiteStreaming(clusterNames, site, "frankfurt", 120*time.Second)
	if code, body := c.client("frankfurt", site).get("/w.php?n=1&v=first"); code != 200 || len(parseAcks(body)) != 1 {
		t.Fatalf("first write: %d %s", code, body)
	}
	epoch := c.status("frankfurt").site(site).Epoch

	// 25 requests a second of 4 inserts each for 12 s, through saopaulo;
	// the move starts after 4 s.
	const total, rows, moveAt = 300, 4, 100
	startMove := make(chan struct{})
	var movedAfter int // requests issued before the move command returned
	var mu sync.Mutex
	issuedSoFar := 0
	done := make(chan *loadResult)
	go func() {
		done <- c.writeLoad("saopaulo", site, 25, total, rows, func(i int) {
			mu.Lock()
			issuedSoFar = i + 1
			mu.Unlock()
			if i == moveAt {
				close(startMove)
			}
		}, nil)
	}()
	<-startMove
	out := c.move("saopaulo", site, "tokyo")
	mu.Lock()
	movedAfter = issuedSoFar
	mu.Unlock()
	t.Logf("move: %s (after request %d)", strings.TrimSpace(out), movedAfter)
	res := <-done

	after := 0
	for i, n := range res.byReq {
		if i >= movedAfter {
			after += n
		}
	}
	t.Logf("%d rows acknowledged (%d after the move), %d of %d requests failed: %v", len(res.acked), after, res.failed, total, res.firstErr)
	if len(res.dups) > 0 {
		t.Fatalf("split brain: %v", res.dups)
	}
	// A request proxied whole to frankfurt just after its demotion gets
	// 421 (nothing ran; replication/DESIGN.md, Limits); nothing else may
	// fail, and not many.
	if res.failed-res.codes[421] > 0 || res.codes[421] > total/10 {
		t.Errorf("failed requests by status: %v", res.codes)
	}
	if after < rows*(total-movedAfter)/2 {
		t.Errorf("only %d rows acknowledged after the move (of %d sent)", after, rows*(total-movedAfter))
	}
	dir := c.waitDirectory(clusterNames, "", 60*time.Second)
	if want := fmt.Sprintf("%s tokyo %d active", site, epoch+1); !strings.Contains(dir, want) {
		t.Errorf("directory after the move:\n%s\nwant %s", dir, want)
	}
	c.waitSiteStreaming(clusterNames, site, "tokyo", 120*time.Second)
	for _, name := range clusterNames {
		testutil.RetryUntil(t, 60*time.Second, func() error { return c.ackRows(name, site, res.acked) })
	}
	// Writes go on, through the old primary too.
	resp, body := c.client("frankfurt", site).req("POST", "/w.php?n=2&v=after-move", nil, "", "")
	ids := parseAcks(body)
	if resp.StatusCode != 200 || len(ids) != 2 {
		t.Fatalf("a write through frankfurt after the move: %d %.500s", resp.StatusCode, body)
	}
	if err := c.ackRows("tokyo", site, map[int]string{ids[0]: "after-move", ids[1]: "after-move"}); err != nil {
		t.Fatalf("the write after the move is not on tokyo: %v", err)
	}
}

// TestClusterNewNodeBootstraps200Sites: a node with only [cluster]
// joins a cluster of 200 sites and bootstraps every one.
func TestClusterNewNodeBootstraps200Sites(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	d := joinWithSites(t, 200, regionDelay)
	t.Logf("mumbai joined and bootstrapped 200 sites in %v", d.Round(time.Millisecond))
}

// joinWithSites runs a 3-node cluster with nSites small sites, each
// with a table and a row, then starts a 4th node with only [cluster],
// waits until it streams every site and is ready, and spot-checks its
// data; it returns the time from the 4th node's start to ready.
func joinWithSites(t testing.TB, nSites int, delay time.Duration) time.Duration {
	c := newEdgeCluster(t, clusterNames, delay, edgeOpts{})
	c.waitMembers(clusterNames, 90*time.Second)
	sites := make([]string, nSites)
	for i := range sites {
		sites[i] = fmt.Sprintf("s%03d.test", i)
	}
	primaryOf := func(i int) string { return clusterNames[i%3] }
	parallel(t, nSites, 8, func(i int) error {
		code, b, err := c.api(clusterNames[i%3], "POST", "/_ephpm/cluster/v1/sites", map[string]string{"name": sites[i], "primary": primaryOf(i)})
		if err != nil || code/100 != 2 {
			return fmt.Errorf("create %s: %d %v %s", sites[i], code, err, b)
		}
		return nil
	})
	// The nodes create the site directories; the PHP files are deployed
	// into them; each site gets a table and a row on its primary.
	for _, name := range clusterNames {
		testutil.RetryUntil(t, 60*time.Second, func() error {
			for _, s := range sites {
				if _, err := os.Stat(filepath.Join(c.nodes[name].sitesDir, s, "site.toml")); err != nil {
					return fmt.Errorf("%s: %v", name, err)
				}
			}
			return nil
		})
	}
	for _, s := range sites {
		c.siteFiles(s, map[string]string{"w.php": writerPHP, "r.php": readerPHP})
	}
	parallel(t, nSites, 8, func(i int) error {
		var last string
		for try := 0; try < 50; try++ {
			resp, body := c.client(primaryOf(i), sites[i]).req("POST", "/w.php?n=1&v="+sites[i], nil, "", "")
			if resp.StatusCode == 200 && len(parseAcks(body)) == 1 {
				return nil
			}
			last = fmt.Sprint(resp.StatusCode, " ", body)
			time.Sleep(200 * time.Millisecond)
		}
		return fmt.Errorf("%s: %s", sites[i], last)
	})

	base := filepath.Dir(c.nodes["frankfurt"].base)
	c.writeConfig(c.addNode(base, "mumbai", clusterSecret))
	start := time.Now()
	c.start("mumbai")
	c.waitUp("mumbai")
	all := append(append([]string(nil), clusterNames...), "mumbai")
	testutil.RetryUntil(t, 240*time.Second, func() error {
		s, err := c.statusErr("mumbai")
		if err != nil {
			return err
		}
		streaming := 0
		var notYet []string
		for _, site := range s.Sites {
			if st := site.Nodes["mumbai"]; st.Role == "replica" && st.State == "streaming" {
				streaming++
			} else if len(notYet) < 3 {
				notYet = append(notYet, fmt.Sprintf("%s %+v", site.Name, st))
			}
		}
		if streaming != nSites {
			return fmt.Errorf("mumbai streams %d of %d sites (%d listed; e.g. %v)", streaming, nSites, len(s.Sites), notYet)
		}
		if code := c.ready("mumbai"); code != 200 {
			return fmt.Errorf("mumbai /_ephpm/ready: %d", code)
		}
		return nil
	})
	joined := time.Since(start)
	c.waitMembers(all, 60*time.Second)
	for _, i := range []int{0, 1, 2, nSites / 2, nSites - 1} {
		testutil.RetryUntil(t, 30*time.Second, func() error {
			db, err := sqlite.Open(context.Background(), sqlite.Config{Path: c.dbPath("mumbai", sites[i]), ReadOnly: true})
			if err != nil {
				return err
			}
			defer db.Close()
			var v string
			if err := db.Reader().QueryRow("SELECT v FROM acks").Scan(&v); err != nil || v != sites[i] {
				return fmt.Errorf("mumbai's %s: %q %v", sites[i], v, err)
			}
			return nil
		})
		// Without its files, the site answers 503 on mumbai; with them,
		// from mumbai's copy.
		cl := c.client("mumbai", sites[i])
		if code, body := cl.get("/r.php"); code != 503 || !strings.Contains(body, "not on this node") {
			t.Errorf("%s on mumbai without files: %d %.200s", sites[i], code, body)
		}
		c.siteFiles(sites[i], map[string]string{"r.php": readerPHP}, "mumbai")
		waitFor(t, "mumbai serves "+sites[i], func() (bool, string) {
			code, body := cl.get("/r.php")
			return code == 200 && body == "rows 1", fmt.Sprint(code, " ", body)
		})
	}
	return joined
}

// parallel runs f(0..n-1), conc at a time, and fails on the first
// errors.
func parallel(t testing.TB, n, conc int, f func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	sem := make(chan struct{}, conc)
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			if err := f(i); err != nil {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	var all []string
	for err := range errs {
		all = append(all, err.Error())
	}
	if len(all) > 0 {
		t.Fatalf("%d of %d failed: %.3000s", len(all), n, strings.Join(all, "\n"))
	}
}

// TestClusterColdRestart: every node stopped, every node started: the
// same directory.
func TestClusterColdRestart(t *testing.T) {
	c := newEdgeCluster(t, clusterNames, regionDelay, edgeOpts{})
	c.waitMembers(clusterNames, 90*time.Second)
	c.createSite("tokyo", "a.test", "frankfurt")
	c.createSite("saopaulo", "b.test", "tokyo")
	c.createSite("frankfurt", "c.test", "saopaulo")
	c.move("frankfurt", "a.test", "saopaulo")
	before := c.waitDirectory(clusterNames, "", 60*time.Second)
	if !strings.Contains(before, "a.test saopaulo ") || strings.Count(before, "\n") != 2 {
		t.Fatalf("directory before the restart:\n%s", before)
	}
	for _, name := range clusterNames {
		c.stop(name)
	}
	for _, name := range clusterNames {
		c.start(name)
	}
	for _, name := range clusterNames {
		c.waitUp(name)
	}
	c.waitMembers(clusterNames, 120*time.Second)
	c.waitDirectory(clusterNames, before, 60*time.Second)
	c.createSite("tokyo", "d.test", "tokyo")
	if dir := c.waitDirectory(clusterNames, "", 60*time.Second); !strings.Contains(dir, "d.test tokyo ") {
		t.Fatalf("create after the restart:\n%s", dir)
	}
}

// TestClusterWrongSecret: a node with another secret is refused.
func TestClusterWrongSecret(t *testing.T) {
	c := newEdgeCluster(t, clusterNames, regionDelay, edgeOpts{})
	c.waitMembers(clusterNames, 90*time.Second)
	seen := map[string]int{}
	for _, name := range clusterNames {
		seen[name] = len(c.logs(name))
	}
	base := filepath.Dir(c.nodes["frankfurt"].base)
	c.writeConfig(c.addNode(base, "intruder", "not-the-cluster-secret-9876543210"))
	c.start("intruder")
	refusal := regexpMust(`(?i)decrypt|refus|wrong secret|authenticat|installed keys|rejected|not authorized|unauthori`)
	var where string
	testutil.RetryUntil(t, 60*time.Second, func() error {
		for _, name := range c.names {
			l := c.logs(name)[seen[name]:]
			if m := refusal.FindString(l); m != "" {
				where = name + ": " + grepLines(l, m)
				return nil
			}
		}
		return fmt.Errorf("no node logged a refusal")
	})
	t.Logf("refusal: %s", where)
	// For as long as a few probe rounds take, no member lists the
	// intruder (bounded: 20 samples).
	for i := 0; i < 20; i++ {
		for _, name := range clusterNames {
			if m := c.status(name).member("intruder"); m != nil {
				t.Fatalf("%s lists the intruder: %+v", name, m)
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	if s, err := c.statusErr("intruder"); err == nil {
		for _, m := range s.Members {
			if m.Name != "intruder" && m.State == "alive" {
				t.Errorf("the intruder sees %s alive", m.Name)
			}
		}
	}
}

// TestClusterLeaderLoss: the directory's leader killed; another is
// elected, the directory is intact and takes changes.
func TestClusterLeaderLoss(t *testing.T) {
	c := newEdgeCluster(t, clusterNames, regionDelay, edgeOpts{})
	leader := c.waitMembers(clusterNames, 90*time.Second)
	rest := without(clusterNames, leader)
	c.createSite(rest[0], "keep.test", rest[1])
	before := c.waitDirectory(clusterNames, "", 60*time.Second)
	c.kill9(leader)
	var next string
	testutil.RetryUntil(t, 60*time.Second, func() error {
		next = ""
		for _, name := range rest {
			s, err := c.statusErr(name)
			if err != nil {
				return err
			}
			if s.Leader == "" || s.Leader == leader {
				return fmt.Errorf("%s follows %q", name, s.Leader)
			}
			if next != "" && s.Leader != next {
				return fmt.Errorf("two leaders: %s, %s", next, s.Leader)
			}
			next = s.Leader
			if m := s.member(leader); m != nil && m.State == "alive" {
				return fmt.Errorf("%s still sees %s alive", name, leader)
			}
		}
		return nil
	})
	t.Logf("%s killed, %s leads", leader, next)
	c.waitDirectory(rest, before, 30*time.Second)
	c.createSite(rest[1], "after.test", rest[0])
	dir := c.waitDirectory(rest, "", 60*time.Second)
	if !strings.Contains(dir, "after.test "+rest[0]+" ") {
		t.Fatalf("create after the leader's loss:\n%s", dir)
	}
	// The old leader comes back as a follower and catches up.
	c.restart(leader)
	c.waitMembers(clusterNames, 120*time.Second)
	c.waitDirectory(clusterNames, dir, 60*time.Second)
}

func regexpMust(s string) *regexp.Regexp { return regexp.MustCompile(s) }

// TestClusterFrozenNode: a replica node frozen (SIGSTOP) is marked down
// by the others while writes go on; thawed, it is alive again and
// catches up.
func TestClusterFrozenNode(t *testing.T) {
	const site = "shop.test"
	c := newEdgeCluster(t, clusterNames, regionDelay, edgeOpts{before: func(c *edgeCluster) {
		c.siteFiles(site, map[string]string{"w.php": writerPHP, "r.php": readerPHP})
	}})
	c.waitMembers(clusterNames, 90*time.Second)
	c.createSite("saopaulo", site, "frankfurt")
	c.waitSiteStreaming(clusterNames, site, "frankfurt", 90*time.Second)
	c.pause("tokyo")
	// The others see it dead after the suspicion timeout (memberlist
	// keeps its suspicion to itself: alive, then dead).
	seen := map[string]bool{}
	testutil.RetryUntil(t, 60*time.Second, func() error {
		for _, name := range []string{"frankfurt", "saopaulo"} {
			s, err := c.statusErr(name)
			if err != nil {
				return err
			}
			m := s.member("tokyo")
			if m == nil {
				return fmt.Errorf("%s forgot tokyo", name)
			}
			seen[m.State] = true
			if m.State != "dead" {
				return fmt.Errorf("%s sees the frozen tokyo %s", name, m.State)
			}
		}
		return nil
	})
	if len(seen) > 2 || !seen["dead"] {
		t.Errorf("states seen for the frozen tokyo: %v, want alive then dead", seen)
	}
	acked := map[int]string{}
	resp, body := c.client("saopaulo", site).req("POST", "/w.php?n=5&v=while-frozen", nil, "", "")
	ids := parseAcks(body)
	if resp.StatusCode != 200 || len(ids) != 5 {
		t.Fatalf("writes with a replica frozen: %d %.500s", resp.StatusCode, body)
	}
	for _, id := range ids {
		acked[id] = "while-frozen"
	}
	c.resume("tokyo")
	c.waitMembers(clusterNames, 90*time.Second)
	testutil.RetryUntil(t, 60*time.Second, func() error { return c.ackRows("tokyo", site, acked) })
	c.waitSiteStreaming(clusterNames, site, "frankfurt", 60*time.Second)
}
