package fastcgi

import (
	"bytes"
	"net/http"
	"net/textproto"
)

// headerEnd returns the length of the CGI header block in b including its
// terminating blank line ("\r\n\r\n" or "\n\n"), or -1 if b holds no
// complete block. from is where to start looking (to avoid rescanning).
func headerEnd(b []byte, from int) int {
	if from < 0 {
		from = 0
	}
	for i := from; i < len(b); i++ {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j
		// i is at '\n'; a blank line follows if the next byte is '\n' or "\r\n".
		if i+1 < len(b) && b[i+1] == '\n' {
			return i + 2
		}
		if i+2 < len(b) && b[i+1] == '\r' && b[i+2] == '\n' {
			return i + 3
		}
		// A block that starts with the blank line (no headers at all).
		if i == 0 || (i == 1 && b[0] == '\r') {
			return i + 1
		}
	}
	return -1
}

// parseHeaders parses a CGI response header block (lines "Name: value",
// CRLF or LF, with or without the trailing blank line). Like nginx it
// rejects what it cannot parse instead of guessing. Status comes from the
// Status header (removed from the map); 302 if there is a Location and no
// Status; otherwise 200.
func parseHeaders(block []byte) (int, http.Header, error) {
	// Keys and values are substrings of one string, and all values share
	// one backing array: a handful of allocations per response.
	all := string(block)
	lines := bytes.Count(block, []byte{'\n'}) + 1
	h := make(http.Header, lines)
	vals := make([]string, 0, lines)
	status := 0
	off := 0 // offset of block[0] in all
	for len(block) > 0 {
		var line []byte
		lineOff := off
		if i := bytes.IndexByte(block, '\n'); i >= 0 {
			line, block = block[:i], block[i+1:]
			off += i + 1
		} else {
			line, block = block, nil
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) == 0 {
			break // the blank line ends the block
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return 0, nil, protoErr("malformed header line %q", clip(line))
		}
		name := line[:colon]
		for _, c := range name {
			if !validHeaderNameByte(c) {
				return 0, nil, protoErr("invalid header name %q", clip(name))
			}
		}
		value := bytes.TrimLeft(line[colon+1:], " \t")
		valOff := lineOff + len(line) - len(value)
		value = bytes.TrimRight(value, " \t")
		for _, c := range value {
			// No CR, NUL or other controls: they would let a script split
			// the HTTP response (tab is allowed).
			if (c < ' ' && c != '\t') || c == 0x7f {
				return 0, nil, protoErr("invalid byte %#x in header %q", c, clip(name))
			}
		}
		key := textproto.CanonicalMIMEHeaderKey(all[lineOff : lineOff+colon])
		if key == "Status" {
			st, ok := parseStatus(value)
			if !ok {
				return 0, nil, protoErr("invalid Status header %q", clip(value))
			}
			status = st
			continue
		}
		v := all[valOff : valOff+len(value)]
		if prev, ok := h[key]; ok {
			h[key] = append(prev, v)
		} else {
			vals = append(vals, v)
			h[key] = vals[len(vals)-1 : len(vals) : len(vals)]
		}
	}
	if status == 0 {
		status = http.StatusOK
		if _, ok := h["Location"]; ok {
			status = http.StatusFound
		}
	}
	return status, h, nil
}

// parseStatus reads "404" or "404 Not Found".
func parseStatus(v []byte) (int, bool) {
	if len(v) < 3 || (len(v) > 3 && v[3] != ' ') {
		return 0, false
	}
	n := 0
	for _, c := range v[:3] {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	if n < 100 || n > 999 {
		return 0, false
	}
	return n, true
}

func validHeaderNameByte(c byte) bool {
	// RFC 9110 token characters.
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

func clip(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "..."
	}
	return string(b)
}
