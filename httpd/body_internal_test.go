package httpd

import (
	"bytes"
	"io"
	"net/http/httptest"
	"testing"
	"time"
)

// deadlineRecorder is a ResponseWriter whose connection takes read
// deadlines, as net/http's and the lean loop's do.
type deadlineRecorder struct {
	*httptest.ResponseRecorder
	set int
}

func (d *deadlineRecorder) SetReadDeadline(time.Time) error { d.set++; return nil }

// TestReadBodySmallAllocs: the fast path, a body within the buffer, is
// read into a pooled buffer without allocating (and without a file).
func TestReadBodySmallAllocs(t *testing.T) {
	s, err := New(Config{Sites: SingleSite{S: &Site{Name: "default", Root: t.TempDir()}}, TmpDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	payload := bytes.Repeat([]byte("a=1&b=2&"), 1000) // 8 KB
	src := bytes.NewReader(payload)
	r := httptest.NewRequest("POST", "/x.php", nil)
	r.Body, r.ContentLength = io.NopCloser(src), int64(len(payload))
	dr := &deadlineRecorder{ResponseRecorder: httptest.NewRecorder()}
	w := &respWriter{ResponseWriter: dr}
	allocs := testing.AllocsPerRun(100, func() {
		src.Reset(payload)
		var rb reqBody
		if err := s.readBody(&rb, w, r); err != nil {
			t.Fatal(err)
		}
		if rb.mem == nil || rb.f != nil || rb.n != int64(len(payload)) {
			t.Fatalf("small body: mem %v file %v n %d", rb.mem != nil, rb.f != nil, rb.n)
		}
		rb.release()
	})
	if allocs > 0 && !raceEnabled {
		t.Errorf("reading a small body allocates %.1f times", allocs)
	}
	if dr.set == 0 {
		t.Error("the read deadline was never set")
	}
}
