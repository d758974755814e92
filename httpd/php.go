package httpd

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/fastcgi"
)

var paramPool = sync.Pool{New: func() any { s := make([]fastcgi.Param, 0, 48); return &s }}

var copyBufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// cgiHeaderName turns "Accept-Language" into "HTTP_ACCEPT_LANGUAGE".
func cgiHeaderName(k string) string {
	b := make([]byte, 5+len(k))
	copy(b, "HTTP_")
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		case c == '-':
			c = '_'
		}
		b[5+i] = c
	}
	return string(b)
}

var commonCGINames = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{"Accept", "Accept-Encoding", "Accept-Language", "Cache-Control", "Connection",
		"Cookie", "Host", "Origin", "Pragma", "Referer", "User-Agent", "X-Forwarded-For", "X-Forwarded-Proto",
		"X-Requested-With", "Upgrade-Insecure-Requests", "If-None-Match", "If-Modified-Since", "Authorization",
		"Sec-Fetch-Dest", "Sec-Fetch-Mode", "Sec-Fetch-Site", "Sec-Fetch-User", "Dnt", "Range", "Priority"} {
		m[k] = cgiHeaderName(k)
	}
	return m
}()

// buildParams sets the CGI variables as nginx's fastcgi_params and
// Caddy's php_fastcgi do.
func (s *Server) buildParams(params []fastcgi.Param, r *http.Request, site *Site, rt *route, contentLength int64) []fastcgi.Param {
	add := func(k, v string) { params = append(params, fastcgi.Param{Name: k, Value: v}) }
	client := s.client(r)
	remoteIP, remotePort, https := client.IP, client.Port, client.HTTPS
	serverName, _ := splitHostPort(r.Host)
	serverAddr, serverPort := "", ""
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		serverAddr, serverPort = splitHostPort(la.String())
	}
	if client.ServerPort != "" {
		serverPort = client.ServerPort // the port a replica's client reached
	}
	scheme := "http"
	if https {
		scheme = "https"
	}
	add("GATEWAY_INTERFACE", "CGI/1.1")
	add("SERVER_SOFTWARE", "ephpm/"+ephpm.Version)
	add("SERVER_PROTOCOL", r.Proto)
	add("REQUEST_METHOD", r.Method)
	add("REQUEST_URI", r.RequestURI)
	add("REQUEST_SCHEME", scheme)
	add("DOCUMENT_URI", rt.scriptName+rt.pathInfo)
	add("DOCUMENT_ROOT", site.Root)
	add("SCRIPT_NAME", rt.scriptName)
	add("SCRIPT_FILENAME", rt.file)
	add("QUERY_STRING", rt.query)
	// No PATH_TRANSLATED: with cgi.fix_pathinfo=0 php-fpm would run it
	// as the script (nginx's fastcgi_params leaves it out too).
	add("PATH_INFO", rt.pathInfo)
	add("SERVER_NAME", serverName)
	add("SERVER_ADDR", serverAddr)
	add("SERVER_PORT", serverPort)
	add("REMOTE_ADDR", remoteIP)
	add("REMOTE_PORT", remotePort)
	add("REDIRECT_STATUS", "200")
	if https {
		add("HTTPS", "on")
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		add("CONTENT_TYPE", ct)
	}
	if contentLength > 0 || r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch {
		add("CONTENT_LENGTH", strconv.FormatInt(contentLength, 10))
	}
	add("HTTP_HOST", r.Host)
	for k, vs := range r.Header {
		switch k {
		case "Proxy", "Content-Type", "Content-Length", "Host":
			continue // httpoxy; the rest are set above
		}
		name, ok := commonCGINames[k]
		if !ok {
			name = cgiHeaderName(k)
		}
		v := vs[0]
		if len(vs) > 1 {
			sep := ", "
			if k == "Cookie" {
				sep = "; "
			}
			v = strings.Join(vs, sep)
		}
		add(name, v)
	}
	params = append(params, site.Params...)
	return params
}

func splitHostPort(hp string) (host, port string) {
	h, p, err := net.SplitHostPort(hp)
	if err != nil {
		return strings.TrimSuffix(strings.TrimPrefix(hp, "["), "]"), ""
	}
	return h, p
}

// servePHP runs the route's script and streams its response.
func (s *Server) servePHP(w *respWriter, r *http.Request, site *Site, rt *route) error {
	if site.PHP == nil {
		return statusErr(http.StatusServiceUnavailable, "no PHP runtime")
	}
	// The body is read whole before PHP gets a worker: a slow client
	// holds a goroutine and a buffer, never a PHP worker.
	var rb reqBody
	if err := s.readBody(&rb, w, r); err != nil {
		return err
	}
	defer rb.release() // after resp.Body.Close: FastCGI's STDIN writer is done then
	body, cl := rb.reader(), rb.n
	Watch(r) // a client that goes away frees its PHP worker
	ctx, cancel := context.WithTimeout(r.Context(), s.requestTimeout)
	defer cancel()
	pp := paramPool.Get().(*[]fastcgi.Param)
	params := s.buildParams((*pp)[:0], r, site, rt, cl)
	resp, err := site.PHP.Do(ctx, params, body)
	*pp = params[:0]
	paramPool.Put(pp)
	if err != nil {
		return fmt.Errorf("php %s: %w", rt.scriptName, err)
	}
	defer resp.Body.Close()

	h := w.Header()
	for k, v := range resp.Header {
		h[k] = v
	}
	var out io.Writer = w
	var comp *compressor
	if s.compress && r.Method != http.MethodHead && resp.Status != http.StatusNoContent && resp.Status != http.StatusNotModified &&
		h.Get("Content-Encoding") == "" && compressible(h.Get("Content-Type")) {
		small := false
		if v := h.Get("Content-Length"); v != "" {
			n, _ := strconv.ParseInt(v, 10, 64)
			small = n < s.compressMin
		}
		if !small {
			h.Add("Vary", "Accept-Encoding")
			if enc := acceptedEncoding(r.Header.Get("Accept-Encoding")); enc != "" {
				h.Set("Content-Encoding", enc)
				h.Del("Content-Length")
				comp = newCompressor(w, enc)
				out = comp
			}
		}
	}
	w.WriteHeader(resp.Status)
	bp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bp)
	err = copyStreaming(out, resp.Body, *bp, w, comp)
	if comp != nil {
		if cerr := comp.Close(); err == nil {
			err = cerr
		}
	}
	if stderr := resp.Stderr(); stderr != "" {
		s.log.Warn("php stderr", "site", site.Name, "script", rt.scriptName, "stderr", stderr)
	}
	if err != nil {
		return fmt.Errorf("php %s: response: %w", rt.scriptName, err)
	}
	return nil
}

// copyStreaming copies PHP output, flushing to the client whenever the
// FastCGI reader has nothing buffered, so that flush() in PHP and slow
// streamed output reach the client promptly.
func copyStreaming(dst io.Writer, src io.Reader, buf []byte, w *respWriter, comp *compressor) error {
	buffered, _ := src.(interface{ Buffered() int })
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			if _, err := dst.Write(buf[:n]); err != nil {
				return err
			}
			if buffered != nil && buffered.Buffered() == 0 && rerr == nil {
				if comp != nil {
					_ = comp.Flush()
				}
				w.Flush()
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}
