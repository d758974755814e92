package cluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

type memSink struct {
	bytes.Buffer
	cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }
func (s *memSink) Close() error  { return nil }

func applyCmd(t *testing.T, f *fsm, index uint64, cmd command) applyResult {
	t.Helper()
	b, err := json.Marshal(cmd)
	if err != nil {
		t.Fatal(err)
	}
	res, ok := f.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: b}).(applyResult)
	if !ok {
		t.Fatal("Apply did not return an applyResult")
	}
	return res
}

func TestFSM(t *testing.T) {
	changes := 0
	f := newFSM(func() { changes++ })
	created := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	steps := []struct {
		name    string
		cmd     command
		wantErr error
		check   func(applyResult) bool
	}{
		{"register n1", command{Op: OpRegisterNode, Node: &NodeInfo{Name: "n1", Region: "eu"}}, nil, nil},
		{"register n2", command{Op: OpRegisterNode, Node: &NodeInfo{Name: "n2"}}, nil, nil},
		{"register bad name", command{Op: OpRegisterNode, Node: &NodeInfo{Name: "a/b"}}, ErrInvalid, nil},
		{"register no node", command{Op: OpRegisterNode}, ErrInvalid, nil},
		{"create", command{Op: OpCreateSite, Site: "a.example", Primary: "n1", Config: []byte("c"), Time: created}, nil,
			func(r applyResult) bool {
				return r.Site.Epoch == 1 && r.Site.Primary == "n1" && r.Site.Created.Equal(created)
			}},
		{"create again", command{Op: OpCreateSite, Site: "a.example", Primary: "n2", Time: created}, ErrSiteExists,
			func(r applyResult) bool { return r.Site.Primary == "n1" }},
		{"create unknown primary", command{Op: OpCreateSite, Site: "b.example", Primary: "n9"}, ErrUnknownNode, nil},
		{"create bad name", command{Op: OpCreateSite, Site: "-a.example", Primary: "n1"}, ErrInvalid, nil},
		{"set primary", command{Op: OpSetPrimary, Site: "a.example", Primary: "n2", Epoch: 1}, nil,
			func(r applyResult) bool { return r.Site.Epoch == 2 && r.Site.Primary == "n2" }},
		{"set primary stale", command{Op: OpSetPrimary, Site: "a.example", Primary: "n1", Epoch: 1}, ErrEpochChanged,
			func(r applyResult) bool { return r.Site.Epoch == 2 }},
		{"set primary unknown node", command{Op: OpSetPrimary, Site: "a.example", Primary: "n9", Epoch: 2}, ErrUnknownNode, nil},
		{"set primary no site", command{Op: OpSetPrimary, Site: "z.example", Primary: "n1", Epoch: 1}, ErrNoSite, nil},
		{"reconfirm", command{Op: OpSetPrimary, Site: "a.example", Primary: "n2", Epoch: 2}, nil,
			func(r applyResult) bool { return r.Site.Epoch == 3 && r.Site.Primary == "n2" }},
		{"create b", command{Op: OpCreateSite, Site: "b.example", Primary: "n1", Time: created}, nil, nil},
		{"remove b", command{Op: OpRemoveSite, Site: "b.example"}, nil, nil},
		{"remove b again", command{Op: OpRemoveSite, Site: "b.example"}, ErrNoSite, nil},
		{"move removed b", command{Op: OpSetPrimary, Site: "b.example", Primary: "n2", Epoch: 2}, ErrNoSite, nil},
		{"revive b", command{Op: OpCreateSite, Site: "b.example", Primary: "n2", Time: created}, nil,
			func(r applyResult) bool {
				return r.Site.Epoch == 3 && r.Site.State == SiteActive && r.Site.Primary == "n2"
			}},
		{"register n3", command{Op: OpRegisterNode, Node: &NodeInfo{Name: "n3"}}, nil, nil},
		{"remove a primary's node", command{Op: OpRemoveNode, Node: &NodeInfo{Name: "n2"}}, ErrNodeInUse, nil},
		{"remove an unknown node", command{Op: OpRemoveNode, Node: &NodeInfo{Name: "n9"}}, ErrUnknownNode, nil},
		{"remove n3", command{Op: OpRemoveNode, Node: &NodeInfo{Name: "n3"}}, nil, nil},
		{"n3 is gone", command{Op: OpSetPrimary, Site: "a.example", Primary: "n3", Epoch: 3}, ErrUnknownNode, nil},
		{"unknown op", command{Op: "drop_everything.v1"}, ErrInvalid, nil},
	}
	for i, s := range steps {
		res := applyCmd(t, f, uint64(i+1), s.cmd)
		if !errors.Is(res.Err, s.wantErr) || (s.wantErr == nil) != (res.Err == nil) {
			t.Errorf("%s: err = %v, want %v", s.name, res.Err, s.wantErr)
		}
		if s.check != nil && !s.check(res) {
			t.Errorf("%s: result %+v", s.name, res)
		}
	}
	// a log entry that is not JSON fails the same way on every node
	if res := f.Apply(&raft.Log{Index: 100, Data: []byte("{")}).(applyResult); !errors.Is(res.Err, ErrInvalid) {
		t.Errorf("garbage entry: %v", res.Err)
	}
	if idx, _ := f.index(); idx != 100 {
		t.Errorf("index = %d, want 100", idx)
	}
	if changes == 0 {
		t.Error("onChange never called")
	}

	// snapshot → restore round trip
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	g := newFSM(nil)
	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f.sites(), g.sites()) || !reflect.DeepEqual(f.nodes(), g.nodes()) {
		t.Errorf("restored %+v %+v, want %+v %+v", g.sites(), g.nodes(), f.sites(), f.nodes())
	}
	if a, _ := g.index(); a != 100 {
		t.Errorf("restored index %d", a)
	}
	if s, ok := g.site("a.example"); !ok || s.Epoch != 3 || string(s.Config) != "c" {
		t.Errorf("restored site %+v", s)
	}
	// restore replaces, not merges
	h := newFSM(nil)
	applyCmd(t, h, 1, command{Op: OpRegisterNode, Node: &NodeInfo{Name: "stale"}})
	if err := h.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.node("stale"); ok {
		t.Error("Restore kept a node the snapshot does not have")
	}
	if err := h.Restore(io.NopCloser(bytes.NewReader([]byte("not json")))); err == nil {
		t.Error("Restore of garbage succeeded")
	}
	// reads are copies
	s, _ := g.site("a.example")
	s.Config[0] = 'X'
	if s2, _ := g.site("a.example"); string(s2.Config) != "c" {
		t.Error("a read shares the FSM's bytes")
	}
}

func TestNames(t *testing.T) {
	for _, n := range []string{"a", "example.com", "a-b.c-d.example", "x1.y2"} {
		if err := ValidSiteName(n); err != nil {
			t.Errorf("site %q: %v", n, err)
		}
	}
	for _, n := range []string{"", "A.com", "a..b", "-a", "a-", "a_b", "a b", ".a", string(make([]byte, 254))} {
		if err := ValidSiteName(n); !errors.Is(err, ErrInvalid) {
			t.Errorf("site %q accepted", n)
		}
	}
	for _, n := range []string{"n1", "eu-west.1", "Node_A"} {
		if err := ValidNodeName(n); err != nil {
			t.Errorf("node %q: %v", n, err)
		}
	}
	for _, n := range []string{"", "a b", "a/b", `a\b`, "a\x00", string(make([]byte, 65))} {
		if err := ValidNodeName(n); !errors.Is(err, ErrInvalid) {
			t.Errorf("node %q accepted", n)
		}
	}
}

func TestErrorCodes(t *testing.T) {
	for _, e := range errorCodes {
		wrapped := errors.Join(errors.New("context"), e.err)
		back := errorOf(codeOf(wrapped), wrapped.Error())
		if !errors.Is(back, e.err) {
			t.Errorf("%s: %v does not come back as %v", e.code, back, e.err)
		}
	}
	if errorOf("", "") != nil {
		t.Error("empty code is not success")
	}
	if err := errorOf("something_new", "x"); err == nil {
		t.Error("unknown code is not an error")
	}
}
