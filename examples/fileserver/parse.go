package main

import (
	"bytes"
)

// Limits on what a request may send before its headers end. The request
// line limit is nginx's large_client_header_buffers size (8 KiB); the
// header block limit is twice that.
const (
	maxRequestLine = 8 << 10
	maxHeaderBytes = 16 << 10
)

// request is one parsed request. Its byte slices point into the buffer it
// was parsed from and are valid until the session consumes that buffer.
type request struct {
	method, target, proto []byte
	minor                 int // HTTP/1.minor
	host                  bool
	connClose, connKeep   bool
	hasBody               bool // Content-Length > 0 or Transfer-Encoding: the body is not read
	clSeen                bool
	contentLength         []byte // the first Content-Length's digits, without leading zeros
	gzip                  bool   // Accept-Encoding allows gzip
	gzipNamed             bool   // by name, not only through "*"
	ifNoneMatch           []byte
	ifModifiedSince       []byte
	rangeHdr, ifRange     []byte
}

// parseStatus says what parseRequest found.
type parseStatus int

const (
	parseOK         parseStatus = iota
	parseIncomplete             // need more bytes
	parseBad                    // 400
	parseTooLong                // 414: request line over maxRequestLine
	parseTooLarge               // 431: headers over maxHeaderBytes
	parseVersion                // 505
)

// parseRequest parses one request head at the start of b. It returns the
// number of bytes the head took (only with parseOK). Bare LF line ends are
// accepted, as RFC 9112 §2.2 allows; anything else malformed is parseBad.
// It never allocates.
func parseRequest(b []byte, r *request) (int, parseStatus) {
	*r = request{}
	// Leading empty lines are ignored (RFC 9112 §2.2).
	off := 0
	for off < len(b) && (b[off] == '\r' || b[off] == '\n') {
		off++
	}
	line, n, ok := nextLine(b[off:])
	if !ok {
		if len(b)-off > maxRequestLine {
			return 0, parseTooLong
		}
		return 0, parseIncomplete
	}
	if len(line) > maxRequestLine {
		return 0, parseTooLong
	}
	start := off
	off += n
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return 0, parseBad
	}
	r.method = line[:sp1]
	rest := line[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 <= 0 {
		return 0, parseBad
	}
	r.target, r.proto = rest[:sp2], rest[sp2+1:]
	for _, c := range r.method {
		if !isTokenChar(c) {
			return 0, parseBad
		}
	}
	for _, c := range r.target {
		if c <= ' ' || c == 0x7f {
			return 0, parseBad
		}
	}
	if len(r.proto) != 8 || string(r.proto[:5]) != "HTTP/" || r.proto[6] != '.' ||
		!isDigit(r.proto[5]) || !isDigit(r.proto[7]) {
		return 0, parseBad
	}
	if r.proto[5] != '1' {
		return 0, parseVersion
	}
	r.minor = int(r.proto[7] - '0')
	for {
		line, n, ok := nextLine(b[off:])
		if !ok {
			if len(b)-start > maxHeaderBytes {
				return 0, parseTooLarge
			}
			return 0, parseIncomplete
		}
		off += n
		if off-start > maxHeaderBytes {
			return 0, parseTooLarge
		}
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return 0, parseBad
		}
		name := line[:colon]
		for _, c := range name {
			if !isTokenChar(c) { // also refuses obsolete line folding
				return 0, parseBad
			}
		}
		val := trimOWS(line[colon+1:])
		for _, c := range val {
			if (c < ' ' && c != '\t') || c == 0x7f {
				return 0, parseBad
			}
		}
		if st := r.header(name, val); st != parseOK {
			return 0, st
		}
	}
	if r.minor >= 1 && !r.host {
		return 0, parseBad // RFC 9112 §3.2: a 1.1 request without Host is 400
	}
	if r.minor == 0 && !r.connKeep {
		r.connClose = true // HTTP/1.0 closes unless it asks for keep-alive; close always wins
	}
	return off, parseOK
}

func (r *request) header(name, val []byte) parseStatus {
	switch len(name) {
	case 4:
		if bytes.EqualFold(name, []byte("host")) {
			if r.host || !validHost(val) {
				return parseBad // RFC 9112 §3.2: more than one Host, or an invalid one, is 400
			}
			r.host = true
		}
	case 5:
		if bytes.EqualFold(name, []byte("range")) {
			r.rangeHdr = val
		}
	case 8:
		if bytes.EqualFold(name, []byte("if-range")) {
			r.ifRange = val
		}
	case 10:
		if bytes.EqualFold(name, []byte("connection")) {
			forEachToken(val, func(t []byte) {
				if bytes.EqualFold(t, []byte("close")) {
					r.connClose = true
				} else if bytes.EqualFold(t, []byte("keep-alive")) {
					r.connKeep = true
				}
			})
		}
	case 13:
		if bytes.EqualFold(name, []byte("if-none-match")) {
			r.ifNoneMatch = val
		}
	case 14:
		if bytes.EqualFold(name, []byte("content-length")) {
			if len(val) == 0 {
				return parseBad
			}
			for _, c := range val {
				if !isDigit(c) {
					return parseBad
				}
			}
			n := bytes.TrimLeft(val, "0")
			if r.clSeen && !bytes.Equal(n, r.contentLength) {
				return parseBad // RFC 9110 §8.6: lengths that disagree
			}
			r.clSeen, r.contentLength = true, n
			if len(n) > 0 {
				r.hasBody = true
			}
		}
	case 15:
		if bytes.EqualFold(name, []byte("accept-encoding")) {
			forEachToken(val, func(t []byte) {
				coding, q := t, []byte(nil)
				if i := bytes.IndexByte(t, ';'); i >= 0 {
					coding, q = trimOWS(t[:i]), trimOWS(t[i+1:])
				}
				// gzip by name decides; "*" only when gzip is not named.
				if bytes.EqualFold(coding, []byte("gzip")) {
					r.gzip, r.gzipNamed = !isQZero(q), true
				} else if bytes.Equal(coding, []byte("*")) && !r.gzipNamed {
					r.gzip = !isQZero(q)
				}
			})
		}
	case 17:
		if bytes.EqualFold(name, []byte("if-modified-since")) {
			r.ifModifiedSince = val
		}
		if bytes.EqualFold(name, []byte("transfer-encoding")) {
			// The body is never read, so the connection closes after
			// the response; but a request whose final coding is not
			// chunked has no framing at all: 400 (RFC 9112 §6.3).
			var last []byte
			forEachToken(val, func(t []byte) { last = t })
			if !bytes.EqualFold(last, []byte("chunked")) {
				return parseBad
			}
			r.hasBody = true
		}
	}
	return parseOK
}

// validHost reports whether a Host value is uri-host [":" port] (RFC 9112
// §3.2, RFC 3986 §3.2.2): an IP literal in brackets, or a reg-name or
// IPv4 address, which share one alphabet. An empty value is valid.
func validHost(v []byte) bool {
	if len(v) > 0 && v[0] == '[' {
		end := bytes.IndexByte(v, ']')
		if end < 0 {
			return false
		}
		for _, c := range v[1:end] {
			if !(isHexDigit(c) || c == ':' || c == '.' || isAlpha(c)) {
				return false // IPv6, or IPvFuture's letters and dots
			}
		}
		v = v[end+1:]
		if len(v) > 0 && v[0] != ':' {
			return false
		}
	} else {
		for i, c := range v {
			if c == ':' {
				v = v[i:]
				break
			}
			if !regNameChar(c) {
				return false
			}
			if i == len(v)-1 {
				v = nil
			}
		}
	}
	if len(v) > 0 { // ":" port, port = *DIGIT
		for _, c := range v[1:] {
			if !isDigit(c) {
				return false
			}
		}
	}
	return true
}

// regNameChar: unreserved, sub-delims or pct-encoded's '%' (RFC 3986).
func regNameChar(c byte) bool {
	switch c {
	case '-', '.', '_', '~', '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=', '%':
		return true
	}
	return isAlpha(c) || isDigit(c)
}

func isAlpha(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

func isHexDigit(c byte) bool { return isDigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'f') }

// isQZero reports whether a "q=..." parameter is zero (gzip refused).
func isQZero(q []byte) bool {
	if len(q) < 2 || (q[0] != 'q' && q[0] != 'Q') || q[1] != '=' {
		return false
	}
	for _, c := range q[2:] {
		if c != '0' && c != '.' {
			return false
		}
	}
	return true
}

// nextLine returns the line at the start of b without its CRLF or LF, and
// how many bytes it and its end took.
func nextLine(b []byte) (line []byte, n int, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return nil, 0, false
	}
	line = b[:i]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, i + 1, true
}

func forEachToken(v []byte, f func([]byte)) {
	for len(v) > 0 {
		i := bytes.IndexByte(v, ',')
		var t []byte
		if i < 0 {
			t, v = v, nil
		} else {
			t, v = v[:i], v[i+1:]
		}
		if t = trimOWS(t); len(t) > 0 {
			f(t)
		}
	}
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// isTokenChar is RFC 9110's tchar.
func isTokenChar(c byte) bool {
	if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || isDigit(c) {
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// cleanPath turns a request target into a path relative to the root
// ("" for the root itself) and whether it named a directory (trailing
// slash). It refuses what must never reach the file system: a target that
// is not origin-form or absolute-form, bad percent escapes, escaped or
// literal NUL and backslash, an escaped slash, and "." or ".." segments.
// hidden is true when a segment starts with a dot (dotfiles are 404).
// dst is reused for the result.
func cleanPath(dst, target []byte) (rel []byte, dir, hidden, ok bool) {
	if i := bytes.IndexByte(target, '?'); i >= 0 {
		target = target[:i]
	}
	if i := bytes.IndexByte(target, '#'); i >= 0 {
		target = target[:i]
	}
	if len(target) > 7 && (target[0] == 'h' || target[0] == 'H') {
		// absolute-form: http://host/path (RFC 9112 §3.2.2).
		low := bytes.ToLower(target[:min(len(target), 8)])
		switch {
		case bytes.HasPrefix(low, []byte("http://")):
			target = target[7:]
		case bytes.HasPrefix(low, []byte("https://")):
			target = target[8:]
		default:
			return nil, false, false, false
		}
		i := bytes.IndexByte(target, '/')
		if i < 0 {
			target = []byte("/")
		} else {
			target = target[i:]
		}
	}
	if len(target) == 0 || target[0] != '/' {
		return nil, false, false, false
	}
	dst = dst[:0]
	segStart := 0
	for i := 0; i < len(target); i++ {
		c := target[i]
		if c == '%' {
			if i+2 >= len(target) || unhex(target[i+1]) < 0 || unhex(target[i+2]) < 0 {
				return nil, false, false, false
			}
			c = byte(unhex(target[i+1])<<4 | unhex(target[i+2]))
			i += 2
			if c == '/' {
				return nil, false, false, false
			}
		} else if c == '/' {
			if !endSegment(&dst, segStart, &hidden) {
				return nil, false, false, false
			}
			segStart = len(dst)
			continue
		}
		if c == 0 || c == '\\' {
			return nil, false, false, false
		}
		dst = append(dst, c)
	}
	dir = len(dst) == segStart
	if !endSegment(&dst, segStart, &hidden) {
		return nil, false, false, false
	}
	if len(dst) > 0 && dst[len(dst)-1] == '/' {
		dst = dst[:len(dst)-1]
	}
	return dst, dir, hidden, true
}

// endSegment closes the segment dst[start:]: an empty one (a doubled
// slash) disappears, "." and ".." refuse the path, others get a slash.
func endSegment(dst *[]byte, start int, hidden *bool) bool {
	seg := (*dst)[start:]
	switch {
	case len(seg) == 0:
		return true
	case string(seg) == "." || string(seg) == "..":
		return false
	case seg[0] == '.':
		*hidden = true
	}
	*dst = append(*dst, '/')
	return true
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c - 'a' + 10)
	case c >= 'A' && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}
