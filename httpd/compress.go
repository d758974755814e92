package httpd

import (
	"bytes"
	"compress/gzip"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/andybalholm/brotli"
)

// Levels for on-the-fly compression of PHP output: fast, since it runs
// per request (static files are compressed once, at the best level).
const (
	dynamicGzipLevel   = 5
	dynamicBrotliLevel = 4
)

// acceptedEncoding picks br, then gzip, from an Accept-Encoding value.
func acceptedEncoding(ae string) string {
	if ae == "" {
		return ""
	}
	br, gz := false, false
	for _, part := range strings.Split(ae, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		name = strings.ToLower(strings.TrimSpace(name))
		if q, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if v, err := strconv.ParseFloat(q, 64); err == nil && v == 0 {
				continue
			}
		}
		switch name {
		case "br":
			br = true
		case "gzip", "x-gzip":
			gz = true
		case "*":
			gz = true
		}
	}
	switch {
	case br:
		return "br"
	case gz:
		return "gzip"
	}
	return ""
}

func compressBytes(b []byte, enc string, level int) []byte {
	var buf bytes.Buffer
	var w io.WriteCloser
	if enc == "br" {
		w = brotli.NewWriterLevel(&buf, level)
	} else {
		w, _ = gzip.NewWriterLevel(&buf, level)
	}
	_, _ = w.Write(b)
	_ = w.Close()
	return buf.Bytes()
}

var gzipPool = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(io.Discard, dynamicGzipLevel)
	return w
}}

var brPool = sync.Pool{New: func() any { return brotli.NewWriterLevel(io.Discard, dynamicBrotliLevel) }}

// compressor streams a compressed body and returns its encoder to a pool.
type compressor struct {
	enc string
	gz  *gzip.Writer
	br  *brotli.Writer
}

func newCompressor(w io.Writer, enc string) *compressor {
	c := &compressor{enc: enc}
	if enc == "br" {
		c.br = brPool.Get().(*brotli.Writer)
		c.br.Reset(w)
	} else {
		c.gz = gzipPool.Get().(*gzip.Writer)
		c.gz.Reset(w)
	}
	return c
}

func (c *compressor) Write(p []byte) (int, error) {
	if c.br != nil {
		return c.br.Write(p)
	}
	return c.gz.Write(p)
}

func (c *compressor) Flush() error {
	if c.br != nil {
		return c.br.Flush()
	}
	return c.gz.Flush()
}

func (c *compressor) Close() error {
	var err error
	if c.br != nil {
		err = c.br.Close()
		c.br.Reset(io.Discard)
		brPool.Put(c.br)
		c.br = nil
	} else if c.gz != nil {
		err = c.gz.Close()
		c.gz.Reset(io.Discard)
		gzipPool.Put(c.gz)
		c.gz = nil
	}
	return err
}
