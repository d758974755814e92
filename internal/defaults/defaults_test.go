package defaults_test

import (
	"testing"
	"time"

	"github.com/ephpm/ephpm/internal/defaults"
)

func TestPositive(t *testing.T) {
	tests := []struct {
		name    string
		v, want time.Duration
	}{
		{"unset", 0, time.Second},
		{"negative", -1, time.Second},
		{"set", time.Millisecond, time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := defaults.Positive(tt.v, time.Second); got != tt.want {
				t.Errorf("Positive(%v, 1s) = %v, want %v", tt.v, got, tt.want)
			}
		})
	}
	if got := defaults.Positive(int32(7), 3); got != 7 {
		t.Errorf("Positive(int32 7, 3) = %d", got)
	}
}
