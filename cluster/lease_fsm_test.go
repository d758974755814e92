package cluster

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
	"time"
)

func TestFSMLeases(t *testing.T) {
	changes := 0
	f := newFSM(func() { changes++ })
	type renewal struct {
		node  string
		index uint64
	}
	var renewed []renewal
	f.onRenew = func(node string, index uint64) { renewed = append(renewed, renewal{node, index}) }
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	applyCmd(t, f, 1, command{Op: OpRegisterNode, Node: &NodeInfo{Name: "n1"}})
	applyCmd(t, f, 2, command{Op: OpRegisterNode, Node: &NodeInfo{Name: "n2"}})
	applyCmd(t, f, 3, command{Op: OpCreateSite, Site: "a.example", Primary: "n1", Time: at})
	before := changes

	if res := applyCmd(t, f, 4, command{Op: OpRenewLease, Node: &NodeInfo{Name: "n9"}, Time: at}); !errors.Is(res.Err, ErrUnknownNode) {
		t.Errorf("renewal of an unknown node: %v", res.Err)
	}
	if res := applyCmd(t, f, 5, command{Op: OpRenewLease}); !errors.Is(res.Err, ErrInvalid) {
		t.Errorf("renewal without node: %v", res.Err)
	}
	if res := applyCmd(t, f, 6, command{Op: OpRenewLease, Node: &NodeInfo{Name: "n1"}, Time: at}); res.Err != nil {
		t.Fatal(res.Err)
	}
	if got := f.leases()["n1"]; got.Index != 6 || !got.Renewed.Equal(at) {
		t.Errorf("lease of n1 = %+v", got)
	}
	if !reflect.DeepEqual(renewed, []renewal{{"n1", 6}}) {
		t.Errorf("onRenew calls %v", renewed)
	}
	if changes != before {
		t.Error("a renewal called onChange")
	}

	steps := []struct {
		name    string
		cmd     command
		wantErr error
	}{
		{"primary moved", command{Op: OpFailover, Site: "a.example", From: "n2", Primary: "n2", Epoch: 1, LeaseIndex: 0}, ErrConflict},
		{"epoch moved", command{Op: OpFailover, Site: "a.example", From: "n1", Primary: "n2", Epoch: 2, LeaseIndex: 6}, ErrConflict},
		{"renewed since", command{Op: OpFailover, Site: "a.example", From: "n1", Primary: "n2", Epoch: 1, LeaseIndex: 5}, ErrConflict},
		{"no site", command{Op: OpFailover, Site: "z.example", From: "n1", Primary: "n2", Epoch: 1, LeaseIndex: 6}, ErrNoSite},
		{"unknown target", command{Op: OpFailover, Site: "a.example", From: "n1", Primary: "n9", Epoch: 1, LeaseIndex: 6}, ErrUnknownNode},
	}
	for i, s := range steps {
		if res := applyCmd(t, f, uint64(10+i), s.cmd); !errors.Is(res.Err, s.wantErr) {
			t.Errorf("%s: err = %v, want %v", s.name, res.Err, s.wantErr)
		}
	}
	res := applyCmd(t, f, 20, command{Op: OpFailover, Site: "a.example", From: "n1", Primary: "n2", Epoch: 1, LeaseIndex: 6, Time: at})
	want := FailoverInfo{From: "n1", To: "n2", Epoch: 2, LeaseIndex: 6, Time: at}
	if res.Err != nil || res.Site.Primary != "n2" || res.Site.Epoch != 2 || res.Site.Failovers != 1 || res.Site.LastFailover != want {
		t.Fatalf("failover: %+v", res)
	}
	if res := applyCmd(t, f, 21, command{Op: OpFailover, Site: "a.example", From: "n1", Primary: "n2", Epoch: 1, LeaseIndex: 6}); !errors.Is(res.Err, ErrConflict) {
		t.Errorf("second failover: %v", res.Err)
	}
	// a revived site keeps its count
	applyCmd(t, f, 22, command{Op: OpRemoveSite, Site: "a.example"})
	if res := applyCmd(t, f, 23, command{Op: OpCreateSite, Site: "a.example", Primary: "n1", Time: at}); res.Site.Failovers != 1 {
		t.Errorf("revived: %+v", res.Site)
	}
	_, sites := f.primarySites("n1")
	if !reflect.DeepEqual(sites, map[string]uint64{"a.example": 4}) {
		t.Errorf("primarySites(n1) = %v", sites)
	}

	// snapshot → restore keeps the leases and reports them as applied
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	g := newFSM(nil)
	renewed = nil
	g.onRenew = func(node string, index uint64) { renewed = append(renewed, renewal{node, index}) }
	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f.leases(), g.leases()) || !reflect.DeepEqual(renewed, []renewal{{"n1", 6}}) {
		t.Errorf("restored leases %v (onRenew %v), want %v", g.leases(), renewed, f.leases())
	}
	s, _ := g.site("a.example")
	if s.Failovers != 1 || s.LastFailover != want {
		t.Errorf("restored site %+v", s)
	}

	// removing a node drops its lease: a late renewal is refused
	applyCmd(t, f, 30, command{Op: OpRegisterNode, Node: &NodeInfo{Name: "n3"}})
	applyCmd(t, f, 31, command{Op: OpRenewLease, Node: &NodeInfo{Name: "n3"}, Time: at})
	if res := applyCmd(t, f, 32, command{Op: OpRemoveNode, Node: &NodeInfo{Name: "n3"}}); res.Err != nil {
		t.Fatal(res.Err)
	}
	if res := applyCmd(t, f, 33, command{Op: OpRenewLease, Node: &NodeInfo{Name: "n3"}, Time: at}); !errors.Is(res.Err, ErrUnknownNode) {
		t.Errorf("renewal of a removed node: %v", res.Err)
	}
	f.mu.RLock()
	_, kept := f.st.Leases["n3"]
	f.mu.RUnlock()
	if kept {
		t.Error("removed node's lease kept")
	}
}

// A snapshot written before leases existed still restores.
func TestFSMRestoreWithoutLeases(t *testing.T) {
	old := `{"sites":{"a.example":{"name":"a.example","primary":"n1","epoch":2,"state":"active","created":"2026-12-07T10:00:00Z"}},"nodes":{"n1":{"name":"n1"}},"index":9}` + "\n"
	f := newFSM(nil)
	if err := f.Restore(io.NopCloser(bytes.NewReader([]byte(old)))); err != nil {
		t.Fatal(err)
	}
	if l := f.leases(); len(l) != 1 || l["n1"].Index != 0 {
		t.Errorf("leases %v", l)
	}
	if s, _ := f.site("a.example"); s.Failovers != 0 || s.LastFailover != (FailoverInfo{}) {
		t.Errorf("site %+v", s)
	}
	// and a renewal works on it
	if res := applyCmd(t, f, 10, command{Op: OpRenewLease, Node: &NodeInfo{Name: "n1"}}); res.Err != nil || f.leases()["n1"].Index != 10 {
		t.Errorf("renewal after an old restore: %v %v", res.Err, f.leases())
	}
}
