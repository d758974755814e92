package kv_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/ephpm/ephpm/kv"
)

// FuzzReader feeds arbitrary bytes to the RESP parser: it must return
// commands or an error, never panic, loop, or hand out oversized arguments.
func FuzzReader(f *testing.F) {
	for _, s := range []string{
		"*1\r\n$4\r\nPING\r\n",
		"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n",
		"PING\r\nGET a\n",
		"*2\r\n$3\r\nGET\r\n$1099511627776\r\n",
		"*-1\r\n*0\r\n*1\r\n$0\r\n\r\n",
		"*1\r\n$-1\r\n",
		"*1\r\n:1\r\n",
		"*99999999999999999999\r\n",
		"$3\r\nabc\r\n",
		"*2\r\n$1\r\na\r\n",
		"\r\n\r\n\n",
	} {
		f.Add([]byte(s))
	}
	const maxBulk = 1 << 16
	f.Fuzz(func(t *testing.T, data []byte) {
		// One byte per read exercises every resume point of the parser.
		r := kv.NewReader(io.MultiReader(&oneByteReader{data: data}), maxBulk, 4*maxBulk)
		for i := 0; i <= len(data); i++ {
			args, err := r.ReadCommand()
			if err != nil {
				var pe *kv.ProtocolError
				if err != io.EOF && err != io.ErrUnexpectedEOF && !errors.As(err, &pe) {
					t.Fatalf("unexpected error type %T: %v", err, err)
				}
				return
			}
			if len(args) == 0 {
				t.Fatal("empty command returned")
			}
			for _, a := range args {
				if len(a) > maxBulk {
					t.Fatalf("argument of %d bytes over the limit", len(a))
				}
			}
		}
		t.Fatal("more commands than input bytes")
	})
}

type oneByteReader struct{ data []byte }

func (r *oneByteReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = r.data[0]
	r.data = r.data[1:]
	return 1, nil
}

// FuzzReaderRoundTrip: any list of arguments, encoded as a multibulk,
// parses back to the same arguments.
func FuzzReaderRoundTrip(f *testing.F) {
	f.Add("SET", "key", "va\r\nlue")
	f.Add("", "", "")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		in := encode(a, b, c)
		r := kv.NewReader(bytes.NewReader(append(in, in...)), 1<<20, 1<<22)
		for n := 0; n < 2; n++ {
			args, err := r.ReadCommand()
			if err != nil {
				t.Fatalf("parse %q: %v", in, err)
			}
			if len(args) != 3 || string(args[0]) != a || string(args[1]) != b || string(args[2]) != c {
				t.Fatalf("round trip of %q gave %q", []string{a, b, c}, args)
			}
		}
	})
}

// FuzzMatch: glob matching never panics, a pattern without special
// characters matches only itself, and "*" matches everything.
func FuzzMatch(f *testing.F) {
	f.Add([]byte("a*b?c[^x-z]\\*"), []byte("aXXbYc\\*"))
	f.Add([]byte("[a-"), []byte("a"))
	f.Add([]byte("*a*a*a*a*a*a*a*a*b"), bytes.Repeat([]byte("a"), 60))
	f.Fuzz(func(t *testing.T, pat, s []byte) {
		kv.Match(pat, s)
		if !kv.Match([]byte("*"), s) {
			t.Fatal("* must match everything")
		}
		if !bytes.ContainsAny(pat, "*?[\\") && kv.Match(pat, s) != bytes.Equal(pat, s) {
			t.Fatalf("literal %q vs %q", pat, s)
		}
	})
}

func TestMatch(t *testing.T) {
	cases := []struct {
		name, pat, s string
		want         bool
	}{
		{"star", "user:*", "user:1", true},
		{"question", "h?llo", "hello", true},
		{"class", "h[ae]llo", "hallo", true},
		{"class miss", "h[ae]llo", "hillo", false},
		{"negated", "h[^e]llo", "hallo", true},
		{"negated miss", "h[^e]llo", "hello", false},
		{"range", "k[0-9]", "k7", true},
		{"reversed range", "k[9-0]", "k7", true},
		{"escape", "a\\*b", "a*b", true},
		{"escape miss", "a\\*b", "axb", false},
		{"backtrack", "*abc", "ababc", true},
		{"empty", "", "", true},
		{"star empty", "*", "", true},
		{"pathological", "*a*a*a*a*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := kv.Match([]byte(tc.pat), []byte(tc.s)); got != tc.want {
				t.Fatalf("Match(%q, %q) = %v", tc.pat, tc.s, got)
			}
		})
	}
}
