package cluster

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func frame(b []byte) []byte {
	out := binary.BigEndian.AppendUint32(nil, uint32(len(b)))
	return append(out, b...)
}

// FuzzCommandFrame feeds network bytes to the leader's command decoder
// and the follower's reply decoder: no panic, no allocation past the
// limits, and whatever decodes re-encodes to a frame that decodes alike.
func FuzzCommandFrame(f *testing.F) {
	for _, s := range []string{
		`{"op":"create_site.v1","site":"a.example","primary":"n1","config":"eA==","time":"2026-12-07T10:00:00Z"}`,
		`{"op":"set_primary.v1","site":"a.example","primary":"n2","epoch":1}`,
		`{"op":"register_node.v1","node":{"name":"n1","raft":"127.0.0.1:7947"}}`,
		`{"op":"remove_site.v1","site":"a.example"}`,
		`{"op":"renew_lease.v1","node":{"name":"n1"},"time":"2026-12-07T10:00:00Z"}`,
		`{"op":"renew_lease.v1"}`,
		`{"op":"failover.v1","site":"a.example","from":"n1","primary":"n2","epoch":3,"lease_index":42,"time":"2026-12-07T10:00:00Z"}`,
		`{"op":"failover.v1","site":"a.example","primary":"n2","epoch":3}`,
		`{"code":"conflict","message":"cluster: conflict"}`,
		`{"index":7,"site":{"name":"a.example","primary":"n1","epoch":1},"code":"epoch_changed","message":"x"}`,
		`{"op":"nope"}`, `{`, ``,
	} {
		f.Add(frame([]byte(s)))
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if cmd, err := decodeCommand(bytes.NewReader(data)); err == nil {
			if err := cmd.validate(); err != nil {
				t.Fatalf("decoded an invalid command: %v", err)
			}
			var buf bytes.Buffer
			if err := writeFrame(&buf, cmd); err != nil {
				t.Fatal(err)
			}
			again, err := decodeCommand(&buf)
			if err != nil || again.Op != cmd.Op || again.Site != cmd.Site || again.Epoch != cmd.Epoch ||
				again.Primary != cmd.Primary || again.From != cmd.From || again.LeaseIndex != cmd.LeaseIndex ||
				(again.Node == nil) != (cmd.Node == nil) || !again.Time.Equal(cmd.Time) {
				t.Fatalf("round trip: %+v, %v (was %+v)", again, err, cmd)
			}
		}
		if rep, err := decodeReply(bytes.NewReader(data)); err == nil {
			_ = errorOf(rep.Code, rep.Message)
		}
	})
}
