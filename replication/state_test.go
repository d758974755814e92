package replication_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/replication"
)

// The words a primary refuses a stream with are the protocol: each maps
// to its sentinel and back, also when the sentinel is wrapped.
func TestRefusalWords(t *testing.T) {
	for _, tc := range []struct {
		word string
		err  error
	}{
		{"need-snapshot", ephpm.ErrNeedSnapshot},
		{"log-reset", replication.ErrLogReset},
		{"ahead", replication.ErrAhead},
	} {
		t.Run(tc.word, func(t *testing.T) {
			if got := replication.RefusalWord(fmt.Errorf("site s: %w", tc.err)); got != tc.word {
				t.Errorf("word of %v: got %q, want %q", tc.err, got, tc.word)
			}
			if got := replication.RefusalErr(tc.word); !errors.Is(got, tc.err) {
				t.Errorf("error of %q: got %v, want %v", tc.word, got, tc.err)
			}
		})
	}
	got := replication.RefusalErr("shrug")
	for _, r := range []error{ephpm.ErrNeedSnapshot, replication.ErrLogReset, replication.ErrAhead} {
		if errors.Is(got, r) {
			t.Errorf("an unknown word is %v", r)
		}
	}
	if want := "primary refused the stream: shrug"; got.Error() != want {
		t.Errorf("unknown word: got %q, want %q", got, want)
	}
}
