package httpd

import (
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strings"
	"syscall"
)

type routeKind int

const (
	routeStatic routeKind = iota
	routePHP
	routeRedirect
)

// route is where a request goes after try_files-style resolution.
type route struct {
	kind       routeKind
	file       string      // absolute path of the static file or script
	info       fs.FileInfo // of file (static)
	scriptName string      // URL path of the script (PHP)
	pathInfo   string      // PATH_INFO (PHP)
	query      string      // QUERY_STRING (PHP; differs from the request's on fallback)
	location   string      // routeRedirect
}

// checkPath enforces the rules that hold before any file system access:
// no NUL, no backslash, no encoded slash, no dot segments, no dotfiles
// (but /.well-known/), no data or config files, no PHP source.
// It looks at the raw request target, since clients normalise paths.
func checkPath(r *http.Request) *Error {
	raw := r.URL.EscapedPath()
	p := r.URL.Path
	if p == "" || p[0] != '/' {
		return statusErr(http.StatusBadRequest, "path must start with /")
	}
	if strings.ContainsAny(p, "\x00\\") || strings.ContainsAny(raw, "\\") {
		return statusErr(http.StatusBadRequest, "NUL or backslash in path")
	}
	if strings.Contains(raw, "%") {
		l := strings.ToLower(raw)
		if strings.Contains(l, "%2f") || strings.Contains(l, "%5c") || strings.Contains(l, "%00") {
			return statusErr(http.StatusBadRequest, "encoded slash, backslash or NUL in path")
		}
	}
	// Dot segments in the raw or the decoded path ("/a/%2e%2e/b").
	for _, s := range []string{raw, p} {
		if hasDotSegment(s) {
			return statusErr(http.StatusBadRequest, "dot segment in path")
		}
	}
	for rest := p[1:]; rest != ""; {
		seg := rest
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			seg, rest = rest[:i], rest[i+1:]
		} else {
			rest = ""
		}
		if len(seg) > 0 && seg[0] == '.' && !(seg == ".well-known" && len(p) > 12 && p[:13] == "/.well-known/") {
			return statusErr(http.StatusNotFound, "dotfile")
		}
	}
	return nil
}

func hasDotSegment(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." || strings.EqualFold(seg, "%2e") || strings.EqualFold(seg, "%2e%2e") ||
			strings.EqualFold(seg, ".%2e") || strings.EqualFold(seg, "%2e.") {
			return true
		}
	}
	return false
}

// denyStatic reports whether a file name must never be sent as-is:
// database files, config, and anything that is (or was) PHP source.
func denyStatic(name string) bool {
	b := strings.ToLower(path.Base(name))
	switch {
	case b == "site.toml" || b == "ephpm.toml":
		return true
	case strings.Contains(b, ".db") || strings.Contains(b, ".sqlite"):
		return true
	case strings.Contains(b, ".php") || strings.Contains(b, ".phtml") || strings.Contains(b, ".phar"):
		return true
	case strings.HasSuffix(b, "~") || strings.HasSuffix(b, ".swp"):
		return true
	}
	return false
}

// splitPHP splits "/a/b.php/c/d" into ("/a/b.php", "/c/d") at the first
// ".php" that ends a path segment. ok is false when there is none.
func splitPHP(p string) (script, pathInfo string, ok bool) {
	for from := 0; ; {
		i := strings.Index(p[from:], ".php")
		if i < 0 {
			return "", "", false
		}
		end := from + i + 4
		if end == len(p) || p[end] == '/' {
			return p[:end], p[end:], true
		}
		from = end
	}
}

// resolve maps the request path to a route like nginx's
// try_files $uri $uri/ /index.php?$query_string.
func (s *Server) resolve(site *Site, r *http.Request) (*route, error) {
	p := r.URL.Path
	if script, info, ok := splitPHP(p); ok {
		return s.phpRoute(site, script, info, r.URL.RawQuery)
	}
	full := site.Root + p
	fi, err := os.Stat(full)
	switch {
	case err == nil && fi.Mode().IsRegular():
		if denyStatic(p) {
			return nil, statusErr(http.StatusNotFound, "denied file")
		}
		return &route{kind: routeStatic, file: full, info: fi}, nil
	case err == nil && fi.IsDir():
		if !strings.HasSuffix(p, "/") {
			loc := p + "/"
			if r.URL.RawQuery != "" {
				loc += "?" + r.URL.RawQuery
			}
			return &route{kind: routeRedirect, location: loc}, nil
		}
		for _, idx := range site.IndexFiles {
			f := full + idx
			ifi, err := os.Stat(f)
			if err != nil || !ifi.Mode().IsRegular() {
				continue
			}
			if strings.HasSuffix(idx, ".php") {
				return &route{kind: routePHP, file: f, scriptName: p + idx, query: r.URL.RawQuery}, nil
			}
			if denyStatic(idx) {
				continue
			}
			return &route{kind: routeStatic, file: f, info: ifi}, nil
		}
	case err != nil && !notExist(err):
		return nil, &Error{Status: http.StatusForbidden, Msg: "stat", Err: err}
	}
	return s.fallback(site, r)
}

func notExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.ENAMETOOLONG)
}

// fallback applies the site's last try_files target.
func (s *Server) fallback(site *Site, r *http.Request) (*route, error) {
	fb := site.Fallback
	if fb == "" || fb == "off" {
		return nil, statusErr(http.StatusNotFound, "no such file")
	}
	target, q, _ := strings.Cut(fb, "?")
	q = strings.NewReplacer("$query_string", r.URL.RawQuery, "$args", r.URL.RawQuery).Replace(q)
	if script, info, ok := splitPHP(target); ok {
		rt, err := s.phpRoute(site, script, info, q)
		if err != nil {
			return nil, statusErr(http.StatusNotFound, "no such file and no fallback script")
		}
		return rt, nil
	}
	fi, err := os.Stat(site.Root + target)
	if err != nil || !fi.Mode().IsRegular() || denyStatic(target) {
		return nil, statusErr(http.StatusNotFound, "no such file")
	}
	return &route{kind: routeStatic, file: site.Root + target, info: fi}, nil
}

// phpRoute executes only scripts that exist as regular files: no
// cgi.fix_pathinfo-style walking up from /uploads/x.jpg/y.php.
func (s *Server) phpRoute(site *Site, script, pathInfo, query string) (*route, error) {
	full := site.Root + script
	fi, err := os.Stat(full)
	if err != nil || !fi.Mode().IsRegular() {
		return nil, statusErr(http.StatusNotFound, "no such script")
	}
	return &route{kind: routePHP, file: full, scriptName: script, pathInfo: pathInfo, query: query}, nil
}
