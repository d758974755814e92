package logbuf

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestWriterFlushes(t *testing.T) {
	var out syncBuf
	w := New(&out)
	w.Write([]byte("one\n"))
	if out.String() != "" {
		t.Fatalf("written through at once: %q", out.String())
	}
	deadline := time.Now().Add(5 * time.Second)
	for out.String() != "one\n" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if out.String() != "one\n" {
		t.Fatalf("not flushed by the flusher: %q", out.String())
	}
	w.Write([]byte("two\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if out.String() != "one\ntwo\n" {
		t.Fatalf("not flushed by Close: %q", out.String())
	}
}
