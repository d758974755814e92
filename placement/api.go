package placement

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/cluster"
	"github.com/ephpm/ephpm/config"
	"github.com/ephpm/ephpm/replication"
)

// The cluster's operations, on every node's replication listener, for
// `ephpm cluster status` and `ephpm sites create|remove|move`. Every
// request carries the node token (Authorization: Bearer).
const (
	PathStatus = "/_ephpm/cluster/v1/status"
	PathSites  = "/_ephpm/cluster/v1/sites"
	PathNodes  = "/_ephpm/cluster/v1/nodes"
)

// DefaultMoveTimeout bounds a whole move (fence, catch-up, directory).
const DefaultMoveTimeout = 30 * time.Second

// NodeSite is one node's copy of a site, in Status.
type NodeSite struct {
	Role      ephpm.Role `json:"role"`
	Position  uint64     `json:"position"`
	State     string     `json:"state"`
	LagFrames uint64     `json:"lag_frames"`
	LagMillis float64    `json:"lag_ms"`
	// Quarantined: this node's copies set aside when its history
	// diverged from the primary's (replication/DESIGN.md, Rejoin).
	Quarantined []string `json:"quarantined,omitempty"`
}

// SiteStatus is a directory site and every node's copy of it.
type SiteStatus struct {
	Name    string              `json:"name"`
	Primary string              `json:"primary"`
	Epoch   uint64              `json:"epoch"`
	State   cluster.SiteState   `json:"state"`
	Nodes   map[string]NodeSite `json:"nodes"`
	// Failovers and LastFailover: from the directory.
	Failovers    uint64               `json:"failovers,omitempty"`
	LastFailover cluster.FailoverInfo `json:"last_failover,omitzero"`
}

// Member is a member as status shows it.
type Member struct {
	cluster.NodeInfo
	State    cluster.MemberState `json:"state"`
	RaftRole string              `json:"raft_role"`
	Error    string              `json:"error,omitempty"` // its status could not be read
}

// Status is the cluster as one node sees it, with every member's
// replication positions gathered for the call.
type Status struct {
	Node        string       `json:"node"`
	Leader      string       `json:"leader"`
	RaftState   string       `json:"raft_state"`
	Term        uint64       `json:"term"`
	CommitIndex uint64       `json:"commit_index"`
	Applied     uint64       `json:"applied_index"`
	Ready       bool         `json:"ready"`
	NotReady    string       `json:"not_ready,omitempty"`
	Members     []Member     `json:"members"`
	Sites       []SiteStatus `json:"sites"`
	// Leases: every node's lease as the directory records it (whether
	// lapsed: only when this node is the raft leader).
	Leases []cluster.NodeLease `json:"leases,omitempty"`
}

// Handler serves the operations; the caller mounts it under
// /_ephpm/cluster/.
func (p *Placement) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathStatus, p.serveStatus)
	mux.HandleFunc("POST "+PathSites, p.serveCreate)
	mux.HandleFunc("DELETE "+PathSites+"/{name}", p.serveRemove)
	mux.HandleFunc("POST "+PathSites+"/{name}/move", p.serveMove)
	mux.HandleFunc("POST "+PathSites+"/{name}/failover", p.serveFailover)
	mux.HandleFunc("DELETE "+PathNodes+"/{name}", p.serveRemoveNode)
	want := []byte("Bearer " + p.cfg.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			p.log.Warn("cluster request refused: bad or missing token", "remote", r.RemoteAddr, "path", r.URL.Path)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// fail answers an operation's error with the status it deserves.
func fail(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, cluster.ErrNoSite):
		code = http.StatusNotFound
	case errors.Is(err, cluster.ErrSiteExists), errors.Is(err, cluster.ErrEpochChanged), errors.Is(err, cluster.ErrNodeInUse),
		errors.Is(err, cluster.ErrConflict):
		code = http.StatusConflict
	case errors.Is(err, cluster.ErrUnknownNode), errors.Is(err, errBadRequest):
		code = http.StatusBadRequest
	case errors.Is(err, cluster.ErrNoLeader), errors.Is(err, cluster.ErrNotLeader), errors.Is(err, context.DeadlineExceeded):
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

var errBadRequest = errors.New("bad request")

// Status gathers the cluster's status: the directory from this node,
// each member's positions from that member (in parallel, bounded).
func (p *Placement) Status(ctx context.Context) Status {
	cs := p.cfg.Dir.Status()
	st := Status{Node: cs.Node, Leader: cs.Leader, RaftState: cs.RaftState, Term: cs.Term,
		CommitIndex: cs.CommitIndex, Applied: cs.AppliedIndex, Leases: cs.Leases}
	if err := p.Ready(); err != nil {
		st.NotReady = err.Error()
	} else {
		st.Ready = true
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	per := make([][]replication.Status, len(cs.Members))
	st.Members = make([]Member, len(cs.Members))
	var wg sync.WaitGroup
	for i, m := range cs.Members {
		st.Members[i] = Member{NodeInfo: m.NodeInfo, State: m.State, RaftRole: m.RaftRole}
		if m.Name == p.cfg.Node {
			per[i] = p.cfg.Repl.Status()
			if q, ok := p.cfg.Repl.(interface{ Quarantined(string) []string }); ok {
				for j := range per[i] {
					per[i][j].Quarantined = q.Quarantined(per[i][j].Site)
				}
			}
			continue
		}
		if m.State != cluster.MemberAlive || m.Repl == "" {
			continue
		}
		wg.Add(1)
		go func(i int, url string) {
			defer wg.Done()
			var list []replication.Status
			err := p.call(ctx, "GET", url+"/_ephpm/repl/v1/status?quarantined=1", nil, &list)
			if err != nil {
				st.Members[i].Error = err.Error()
			}
			per[i] = list
		}(i, m.Repl)
	}
	wg.Wait()
	for _, d := range cs.Sites {
		ss := SiteStatus{Name: d.Name, Primary: d.Primary, Epoch: d.Epoch, State: d.State, Nodes: map[string]NodeSite{},
			Failovers: d.Failovers, LastFailover: d.LastFailover}
		for i, m := range cs.Members {
			for _, r := range per[i] {
				if r.Site == d.Name {
					ss.Nodes[m.Name] = NodeSite{Role: r.Role, Position: r.Position, State: r.State, LagFrames: r.LagFrames, LagMillis: r.LagMillis,
						Quarantined: r.Quarantined}
				}
			}
		}
		st.Sites = append(st.Sites, ss)
	}
	return st
}

func (p *Placement) remoteStatus(ctx context.Context, base string) ([]replication.Status, error) {
	var list []replication.Status
	err := p.call(ctx, "GET", base+"/_ephpm/repl/v1/status", nil, &list)
	return list, err
}

// call makes one request to another node's replication listener.
func (p *Placement) call(ctx context.Context, method, url string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+p.cfg.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e struct{ Error string }
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return &RemoteError{Status: resp.StatusCode, Msg: e.Error}
		}
		return &RemoteError{Status: resp.StatusCode, Msg: strings.TrimSpace(string(data))}
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// RemoteError is another node's answer to an operation.
type RemoteError struct {
	Status int
	Msg    string
}

func (e *RemoteError) Error() string { return fmt.Sprintf("%d: %s", e.Status, e.Msg) }

func (p *Placement) serveStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, p.Status(r.Context()))
}

// CreateRequest is the body of POST /_ephpm/cluster/v1/sites.
type CreateRequest struct {
	Name    string `json:"name"`
	Primary string `json:"primary"` // default: the node that takes the call
}

func (p *Placement) serveCreate(w http.ResponseWriter, r *http.Request) {
	var req CreateRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		fail(w, fmt.Errorf("%w: %v", errBadRequest, err))
		return
	}
	name, err := config.NormalizeHost(req.Name)
	if err != nil || name != req.Name {
		fail(w, fmt.Errorf("%w: site name %q is not a host name", errBadRequest, req.Name))
		return
	}
	if req.Primary == "" {
		req.Primary = p.cfg.Node
	}
	d, err := p.cfg.Dir.CreateSite(r.Context(), name, req.Primary, siteConf(cluster.SiteInfo{Primary: req.Primary}))
	if err != nil {
		fail(w, err)
		return
	}
	// The site exists here before the answer (the others follow).
	if err := p.sync(r.Context()); err != nil {
		p.log.Warn("reconcile after create", "site", name, "err", err)
	}
	writeJSON(w, http.StatusCreated, d)
}

func (p *Placement) serveRemove(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := p.cfg.Dir.RemoveSite(r.Context(), name); err != nil {
		fail(w, err)
		return
	}
	if err := p.sync(r.Context()); err != nil {
		p.log.Warn("reconcile after remove", "site", name, "err", err)
	}
	writeJSON(w, http.StatusOK, map[string]string{"removed": name})
}

// serveRemoveNode takes a node that is gone for good out of the cluster.
func (p *Placement) serveRemoveNode(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := p.cfg.Dir.RemoveNode(r.Context(), name); err != nil {
		fail(w, err)
		return
	}
	p.log.Info("node removed from the cluster", "node", name)
	writeJSON(w, http.StatusOK, map[string]string{"removed": name})
}

// MoveRequest is the body of POST /_ephpm/cluster/v1/sites/{name}/move.
type MoveRequest struct {
	To string `json:"to"`
}

// MoveResult answers a move.
type MoveResult struct {
	Site     string  `json:"site"`
	From     string  `json:"from"`
	To       string  `json:"to"`
	Epoch    uint64  `json:"epoch"`
	PauseMs  float64 `json:"pause_ms"` // writes held on the old primary
	TotalMs  float64 `json:"total_ms"`
	NoChange bool    `json:"no_change,omitempty"`
}

func (p *Placement) serveMove(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var req MoveRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil || req.To == "" {
		fail(w, fmt.Errorf("%w: want {\"to\": NODE}", errBadRequest))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), DefaultMoveTimeout)
	defer cancel()
	res, err := p.Move(ctx, name, req.To)
	if err != nil {
		var re *RemoteError
		if errors.As(err, &re) {
			writeJSON(w, re.Status, map[string]string{"error": re.Msg})
			return
		}
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// Move makes node `to` the site's primary: on that node it takes the
// site over (replication.TakeOver: the old primary holds new writes, this
// node catches up to its last frame, the directory records the change
// with epoch + 1); on any other node it hands the call to `to`.
func (p *Placement) Move(ctx context.Context, name, to string) (MoveResult, error) {
	start := time.Now()
	d, ok := p.cfg.Dir.Site(name)
	if !ok || d.State != cluster.SiteActive {
		return MoveResult{}, fmt.Errorf("site %s: %w", name, cluster.ErrNoSite)
	}
	res := MoveResult{Site: name, From: d.Primary, To: to, Epoch: d.Epoch}
	if d.Primary == to {
		res.NoChange = true
		return res, nil
	}
	if to != p.cfg.Node {
		n, ok := p.cfg.Dir.Node(to)
		if !ok || n.Repl == "" {
			return res, fmt.Errorf("node %q: %w", to, cluster.ErrUnknownNode)
		}
		var out MoveResult
		err := p.call(ctx, "POST", n.Repl+PathSites+"/"+name+"/move", MoveRequest{To: to}, &out)
		return out, err
	}
	if p.primaryGone(d.Primary) {
		// Nothing to fence: the directory's leader promotes this node
		// once the old primary's lease has lapsed (a manual failover).
		return p.askFailover(ctx, d, to, start)
	}
	epoch := d.Epoch
	stats, err := p.cfg.Repl.TakeOver(ctx, name, func(ctx context.Context) error {
		nd, err := p.cfg.Dir.SetPrimary(ctx, name, p.cfg.Node, epoch)
		switch {
		case err == nil:
		case errors.Is(err, cluster.ErrEpochChanged) && nd.Primary == p.cfg.Node && nd.Epoch == epoch+1:
			// A retried write whose first attempt went through.
		case errors.Is(err, cluster.ErrEpochChanged), errors.Is(err, cluster.ErrNoSite), errors.Is(err, cluster.ErrUnknownNode):
			return err // the directory said no: the old primary may resume
		default:
			// No answer (no leader, a timeout): the change may yet
			// commit, so the old primary must stay fenced until its
			// Reconfirm settles it.
			return fmt.Errorf("%w: %v", replication.ErrCommitUnknown, err)
		}
		res.Epoch = nd.Epoch
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("site %s: move to %s: %w", name, to, err)
	}
	// This node takes the primary role before the answer.
	if err := p.sync(ctx); err != nil {
		p.log.Warn("reconcile after move", "site", name, "err", err)
	}
	res.PauseMs = float64(stats.Pause) / float64(time.Millisecond)
	res.TotalMs = float64(time.Since(start)) / float64(time.Millisecond)
	p.log.Info("site moved", "site", name, "from", res.From, "to", to, "epoch", res.Epoch, "pause_ms", res.PauseMs)
	return res, nil
}
