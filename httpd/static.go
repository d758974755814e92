package httpd

import (
	"bytes"
	"io"
	"io/fs"
	"math/rand/v2"
	"mime"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	// DefaultFileCacheMax bounds the bytes of small static files (and
	// their compressed variants) kept in memory.
	DefaultFileCacheMax = 64 << 20
	// DefaultFileCacheEntry is the largest file kept in memory; larger
	// files go out with sendfile, which beats copying from user space.
	DefaultFileCacheEntry = 64 << 10
	// DefaultCompressCacheEntry is the largest file whose compressed
	// form is made once and kept; larger ones are compressed on the fly.
	DefaultCompressCacheEntry = 4 << 20
)

// fileEntry is what we know about one static file at one version.
type fileEntry struct {
	size    int64
	mod     time.Time
	etag    string
	lastMod string
	ctype   string
	comp    bool   // compressible type
	data    []byte // whole content when small enough, else nil

	mu      sync.Mutex
	gz, br  []byte // compressed variants, made on first use
	gzDone  bool
	brDone  bool
	mirrors int64 // bytes accounted for gz+br in the cache
}

// fileCache keeps small static files and their compressed forms.
// A stat per request validates an entry (size and mtime), like nginx's
// open_file_cache with valid=0.
type fileCache struct {
	mu    sync.RWMutex
	m     map[string]*fileEntry
	bytes int64
	max   int64
}

func newFileCache(max int64) *fileCache { return &fileCache{m: map[string]*fileEntry{}, max: max} }

func (c *fileCache) get(root, path string, fi fs.FileInfo) (*fileEntry, error) {
	c.mu.RLock()
	e := c.m[path]
	c.mu.RUnlock()
	if e != nil && e.size == fi.Size() && e.mod.Equal(fi.ModTime()) {
		return e, nil
	}
	e = &fileEntry{size: fi.Size(), mod: fi.ModTime()}
	e.etag = `"` + strconv.FormatInt(e.mod.Unix(), 16) + "-" + strconv.FormatInt(e.size, 16) + `"`
	e.lastMod = e.mod.UTC().Format(http.TimeFormat)
	e.ctype = contentType(path)
	e.comp = compressible(e.ctype)
	if e.size <= DefaultFileCacheEntry {
		// Every read opens the file confined to the document root, so a
		// symlink out of it is never read, even once.
		f, err := openBeneath(root, relPath(root, path))
		if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(io.LimitReader(f, DefaultFileCacheEntry+1))
		f.Close()
		if err != nil {
			return nil, err
		}
		if int64(len(data)) != e.size {
			// Changed under us: serve what we read, don't cache it.
			e.size, e.data = int64(len(data)), data
			return e, nil
		}
		e.data = data
	}
	if e.data != nil || (e.comp && e.size <= DefaultCompressCacheEntry) {
		c.put(path, e)
	}
	return e, nil
}

func (c *fileCache) put(path string, e *fileEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.m[path]; old != nil {
		c.bytes -= int64(len(old.data)) + old.mirrors
	}
	for c.bytes+int64(len(e.data)) > c.max && len(c.m) > 0 {
		// Random eviction: cheap and good enough for a file cache.
		n := rand.IntN(len(c.m))
		for k, v := range c.m {
			if n == 0 {
				c.bytes -= int64(len(v.data)) + v.mirrors
				delete(c.m, k)
				break
			}
			n--
		}
	}
	c.m[path] = e
	c.bytes += int64(len(e.data))
}

func (c *fileCache) account(n int64) {
	c.mu.Lock()
	c.bytes += n
	c.mu.Unlock()
}

// variant returns the compressed form of an entry, made on first use;
// nil when the file is too big to keep compressed or cannot be read.
func (c *fileCache) variant(e *fileEntry, root, path, enc string) []byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	if (enc == "br" && e.brDone) || (enc != "br" && e.gzDone) {
		if enc == "br" {
			return e.br
		}
		return e.gz
	}
	data := e.data
	if data == nil {
		if e.size > DefaultCompressCacheEntry {
			return nil
		}
		f, err := openBeneath(root, relPath(root, path))
		if err != nil {
			return nil
		}
		b, err := io.ReadAll(io.LimitReader(f, e.size+1))
		f.Close()
		if err != nil || int64(len(b)) != e.size {
			return nil
		}
		data = b
	}
	switch enc {
	case "br":
		if !e.brDone {
			e.br, e.brDone = compressBytes(data, "br", 9), true
			e.mirrors += int64(len(e.br))
			c.account(int64(len(e.br)))
		}
		return e.br
	default:
		if !e.gzDone {
			e.gz, e.gzDone = compressBytes(data, "gzip", 9), true
			e.mirrors += int64(len(e.gz))
			c.account(int64(len(e.gz)))
		}
		return e.gz
	}
}

var extraTypes = map[string]string{
	".txt":   "text/plain; charset=utf-8",
	".js":    "text/javascript; charset=utf-8",
	".mjs":   "text/javascript; charset=utf-8",
	".css":   "text/css; charset=utf-8",
	".html":  "text/html; charset=utf-8",
	".htm":   "text/html; charset=utf-8",
	".json":  "application/json",
	".svg":   "image/svg+xml",
	".woff2": "font/woff2",
	".woff":  "font/woff",
	".ico":   "image/x-icon",
	".map":   "application/json",
	".xml":   "text/xml; charset=utf-8",
	".md":    "text/markdown; charset=utf-8",
	".wasm":  "application/wasm",
	".webp":  "image/webp",
	".avif":  "image/avif",
}

func contentType(name string) string {
	ext := strings.ToLower(filepath.Ext(name))
	if t, ok := extraTypes[ext]; ok {
		return t
	}
	if t := mime.TypeByExtension(ext); t != "" {
		return t
	}
	return "application/octet-stream" // nginx's default_type
}

func compressible(ctype string) bool {
	ct, _, _ := strings.Cut(ctype, ";")
	switch {
	case strings.HasPrefix(ct, "text/"):
		return true
	case strings.HasSuffix(ct, "+xml"), strings.HasSuffix(ct, "+json"):
		return true
	}
	switch ct {
	case "application/javascript", "application/json", "application/xml", "application/wasm",
		"application/x-javascript", "font/ttf", "font/otf", "application/vnd.ms-fontobject", "image/x-icon", "image/bmp":
		return true
	}
	return false
}

// serveStatic sends a file with validators, ranges and compression.
func (s *Server) serveStatic(w *respWriter, r *http.Request, site *Site, rt *route) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return statusErr(http.StatusMethodNotAllowed, "method not allowed for a static file")
	}
	e, err := s.files.get(site.Root, rt.file, rt.info)
	if err != nil {
		return &Error{Status: http.StatusForbidden, Msg: "read static file", Err: err}
	}
	h := w.Header()
	h["Content-Type"] = []string{e.ctype}
	h["Last-Modified"] = []string{e.lastMod}
	h["Accept-Ranges"] = []string{"bytes"}
	if site.CacheControl != "" {
		h["Cache-Control"] = []string{site.CacheControl}
	}
	enc := ""
	if e.comp && s.compress && e.size >= s.compressMin {
		h["Vary"] = []string{"Accept-Encoding"}
		if r.Header.Get("Range") == "" {
			enc = acceptedEncoding(r.Header.Get("Accept-Encoding"))
		}
	}
	etag := e.etag
	if enc != "" {
		etag = etag[:len(etag)-1] + "-" + enc + `"`
	}
	h["Etag"] = []string{etag}
	if notModified(r, etag, e.mod) {
		delete(h, "Content-Type")
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	if r.Header.Get("Range") != "" {
		var content io.ReadSeeker
		if e.data != nil {
			content = bytes.NewReader(e.data)
		} else {
			f, err := openBeneath(site.Root, relPath(site.Root, rt.file))
			if err != nil {
				return &Error{Status: http.StatusForbidden, Msg: "open static file", Err: err}
			}
			defer f.Close()
			content = f
		}
		http.ServeContent(w, r, "", e.mod, content)
		return nil
	}
	if enc != "" {
		if body := s.files.variant(e, site.Root, rt.file, enc); body != nil {
			h["Content-Encoding"] = []string{enc}
			h["Content-Length"] = []string{strconv.Itoa(len(body))}
			w.WriteHeader(http.StatusOK)
			if r.Method != http.MethodHead {
				_, _ = w.Write(body)
			}
			return nil
		}
		// Too big to keep: compress on the fly (streaming).
		f, err := openBeneath(site.Root, relPath(site.Root, rt.file))
		if err != nil {
			return &Error{Status: http.StatusForbidden, Msg: "open static file", Err: err}
		}
		defer f.Close()
		h["Content-Encoding"] = []string{enc}
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodHead {
			return nil
		}
		cw := newCompressor(w, enc)
		_, err = io.Copy(cw, f)
		if cerr := cw.Close(); err == nil {
			err = cerr
		}
		return err
	}
	h["Content-Length"] = []string{strconv.FormatInt(e.size, 10)}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return nil
	}
	if e.data != nil {
		_, err = w.Write(e.data)
		return err
	}
	f, err := openBeneath(site.Root, relPath(site.Root, rt.file))
	if err != nil {
		return &Error{Status: http.StatusForbidden, Msg: "open static file", Err: err}
	}
	defer f.Close()
	_, err = io.CopyN(w, f, e.size) // sendfile via ReadFrom
	return err
}

// notModified evaluates If-None-Match, then If-Modified-Since (RFC 9110).
func notModified(r *http.Request, etag string, mod time.Time) bool {
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		for _, t := range strings.Split(inm, ",") {
			t = strings.TrimSpace(t)
			if t == "*" || strings.TrimPrefix(t, "W/") == etag {
				return true
			}
		}
		return false
	}
	if ims := r.Header.Get("If-Modified-Since"); ims != "" {
		t, err := http.ParseTime(ims)
		return err == nil && !mod.Truncate(time.Second).After(t)
	}
	return false
}

// relPath is path relative to root (path is always root + "/...").
func relPath(root, path string) string {
	return strings.TrimPrefix(strings.TrimPrefix(path, root), "/")
}
