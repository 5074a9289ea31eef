package main

import (
	"bytes"
	"html"
	"net/url"
	"os"
	"sort"
	"strconv"
	"sync/atomic"
	"time"
)

// timeFormat is RFC 9110's IMF-fixdate (net/http.TimeFormat).
const timeFormat = "Mon, 02 Jan 2006 15:04:05 GMT"

// outLimit bounds the responses a session builds before its transport
// flushes them, so that a client pipelining thousands of requests without
// reading cannot make it buffer without end.
const outLimit = 256 << 10

// segment is a run of output: bytes out[start:end], or when f is set, n
// bytes of f from off, sent by the transport with SendFile.
type segment struct {
	start, end int
	f          *file
	off, n     int64
	// logLine is the access log entry of the response this file is the
	// body of, up to its size: segDone completes it with the bytes sent.
	logLine []byte
}

// session is the HTTP/1.x state of one connection, independent of the
// transport: the transport feeds it the bytes it receives and sends what it
// produced (out and segs, in order), then calls reset. It parses pipelined
// requests, decides keep-alive, enforces the limits and builds every
// response; it never blocks and never does I/O other than through the
// cache.
type session struct {
	srv    *server
	remote string // for the access log

	in   []byte // bytes of an incomplete request head, kept between feeds
	out  []byte
	segs []segment
	// closing: respond to nothing more and close once out is sent.
	closing bool
	// requests answered, for tests and metrics
	served int
	// blank counts the empty-line bytes dropped since the last request.
	blank int

	req     request
	pathBuf []byte
	keyBuf  []byte

	// nowait: the session must not wait for the disk (the callback
	// transport runs it on a loop goroutine; the conn transport's
	// goroutines must not block a thread, see diskWait.loop). A request
	// whose file is not all in memory then waits (wait is its cache key;
	// nothing is fed meanwhile) while the transport looks it up through
	// a loop's ops (cache.get with diskWait.loop), hands the answer over
	// in ready and feeds again.
	nowait bool
	wait   string
	ready  *lookup
	list   *dirListing // from ready, for listing
	// prebuilt: hot files of preMin or more may go as one sendfile(2) of
	// a prebuilt response (see prebuilt). The callback transport sets it;
	// the conn transport, whose SendFile is an op round trip and a page
	// cache check of its own, measured slower with it (server CPU per
	// 16 KiB response 42 µs against 35).
	prebuilt bool
}

// lookup is a cache answer a transport got off the loop, for the request
// that waits for it (session.ready): files acquired, and for a directory
// to be listed, its listing.
type lookup struct {
	f, gz *file
	st    lookupStatus
	list  *dirListing
}

func (l *lookup) release() {
	if l.f != nil {
		l.f.release()
	}
	if l.gz != nil {
		l.gz.release()
	}
}

// waiting reports whether a request waits for a lookup off the loop.
func (s *session) waiting() bool { return s.wait != "" }

func newSession(srv *server, remote string) *session {
	return &session{srv: srv, remote: remote, out: make([]byte, 0, 4096)}
}

// partial reports whether part of a request has arrived (the header read
// timeout applies) as opposed to an idle connection.
func (s *session) partial() bool { return len(s.in) > 0 }

// feed takes received bytes and answers every complete request in them.
// It returns true when it stopped early because out is full: the transport
// flushes, resets and calls feed(nil) again.
func (s *session) feed(data []byte) bool {
	buf := data
	if len(s.in) > 0 {
		s.in = append(s.in, data...)
		buf = s.in
	}
	again := false
	for len(buf) > 0 && !s.closing {
		if len(s.out) >= outLimit {
			again = true
			break
		}
		// Empty lines before a request are ignored (RFC 9112 §2.2), and
		// dropped here rather than kept with a partial request; a client
		// that sends nothing else gets no more of them than a request
		// line's worth.
		for len(buf) > 0 && (buf[0] == '\r' || buf[0] == '\n') {
			buf = buf[1:]
			s.blank++
		}
		if s.blank > maxRequestLine {
			s.fail(parseBad)
			buf = nil
			break
		}
		if len(buf) == 0 {
			break
		}
		n, st := parseRequest(buf, &s.req)
		if st == parseIncomplete {
			break
		}
		if st != parseOK {
			s.fail(st)
			buf = nil
			break
		}
		if !s.respond(&s.req) {
			// It waits for its lookup, and is parsed again when that
			// is in. Its response will close the connection if it
			// has a body or says close: what follows is dropped, as
			// it would be then.
			if s.req.hasBody || s.req.connClose {
				buf = buf[:n]
			}
			break
		}
		s.blank = 0
		buf = buf[n:]
	}
	// Keep the rest for the next feed: data belongs to the transport.
	if s.closing {
		buf = nil
	}
	if len(s.in) > 0 {
		s.in = s.in[:copy(s.in, buf)]
	} else {
		s.in = append(s.in[:0], buf...)
	}
	return again
}

// flushSegments visits the output in order: runs of bytes (f == nil, b
// set) and files.
func (s *session) flushSegments(visit func(seg segment, b []byte)) {
	start := 0
	for _, sg := range s.segs {
		if sg.start > start {
			visit(segment{start: start, end: sg.start}, s.out[start:sg.start])
		}
		visit(sg, nil)
		start = sg.start
	}
	if len(s.out) > start {
		visit(segment{start: start, end: len(s.out)}, s.out[start:])
	}
}

// reset forgets the output after the transport took it. Files not handed
// to a transport's SendFile are released by it, not here.
func (s *session) reset() {
	s.out = s.out[:0]
	clear(s.segs)
	s.segs = s.segs[:0]
}

// release drops the files of unsent segments (a connection that died).
func (s *session) release() {
	if s.ready != nil {
		s.ready.release()
		s.ready = nil
	}
	for _, sg := range s.segs {
		s.segDone(sg, 0)
	}
	s.reset()
}

// segDone is the end of a file segment that a transport took (or release
// dropped): sent of its n bytes went out. The access log says as much,
// as nginx's body_bytes_sent does for a response cut short.
func (s *session) segDone(sg segment, sent int64) {
	if sg.logLine != nil {
		s.srv.alog.finish(sg.logLine, sent)
	}
	sg.f.release()
}

func (s *session) fail(st parseStatus) {
	code := 400
	switch st {
	case parseTooLong:
		code = 414
	case parseTooLarge:
		code = 431
	case parseVersion:
		code = 505
	}
	s.closing = true
	s.simple(nil, code, "")
}

var statusText = map[int]string{
	200: "OK", 206: "Partial Content", 301: "Moved Permanently", 304: "Not Modified",
	400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
	414: "URI Too Long", 416: "Range Not Satisfiable", 431: "Request Header Fields Too Large",
	500: "Internal Server Error", 503: "Service Unavailable", 505: "HTTP Version Not Supported",
}

// statusLines are "HTTP/1.1 200 OK\r\nServer: ringo\r\n" and so on,
// built once.
var statusLines = func() map[int][]byte {
	m := make(map[int][]byte)
	for code, text := range statusText {
		m[code] = []byte("HTTP/1.1 " + strconv.Itoa(code) + " " + text + "\r\nServer: ringo\r\n")
	}
	return m
}()

// head appends the status line, Server, Date and the connection header.
func (s *session) head(r *request, code int) {
	s.out = append(s.out, statusLines[code]...)
	s.out = append(s.out, "Date: "...)
	s.out = append(s.out, httpDate()...)
	s.out = append(s.out, "\r\n"...)
	switch {
	case s.closing || r == nil || r.connClose || r.hasBody || s.srv.draining.Load():
		s.closing = true
		s.out = append(s.out, "Connection: close\r\n"...)
	case r.minor == 0:
		s.out = append(s.out, "Connection: keep-alive\r\n"...)
	}
}

// simple answers with a short text body (errors, redirects).
func (s *session) simple(r *request, code int, extra string) {
	s.head(r, code)
	body := statusText[code]
	if code == 416 || code == 304 {
		body = ""
	}
	s.out = append(s.out, extra...)
	n := 0
	if body != "" {
		n = len(body) + 1 // and a newline
	}
	if code != 304 {
		s.out = append(s.out, "Content-Type: text/plain; charset=utf-8\r\nContent-Length: "...)
		s.out = strconv.AppendInt(s.out, int64(n), 10)
		s.out = append(s.out, "\r\n"...)
	}
	s.out = append(s.out, "\r\n"...)
	if body != "" && (r == nil || string(r.method) != "HEAD") {
		s.out = append(s.out, body...)
		s.out = append(s.out, '\n')
	} else {
		n = 0 // the access log counts body bytes sent
	}
	s.log(r, code, int64(n))
}

// respond answers r. It reports false, having done nothing, when r's file
// must first be looked up off the loop (nowait; see session.wait).
func (s *session) respond(r *request) bool {
	get := string(r.method) == "GET"
	var (
		rel               []byte
		dir, hidden, ok   bool
		f, gz             *file
		ls                lookupStatus
		allowed, servable = get || string(r.method) == "HEAD", false
	)
	if allowed {
		rel, dir, hidden, ok = cleanPath(s.pathBuf, r.target)
		s.pathBuf = rel[:0]
		servable = ok && (!hidden || s.srv.cfg.dotfiles)
	}
	if servable {
		s.keyBuf = append(s.keyBuf[:0], rel...)
		if dir {
			s.keyBuf = append(s.keyBuf, '/')
		}
		switch now := time.Now().UnixNano(); {
		case s.ready != nil:
			f, gz, ls, s.list = s.ready.f, s.ready.gz, s.ready.st, s.ready.list
			s.ready = nil
		case s.nowait:
			f, gz, ls = s.srv.cache.get(s.keyBuf, now, diskWait{never: true})
			// A listing reads the whole directory: built off the loop
			// too (server.lookUpOff), however warm the directory is.
			if ls == lookWait || (ls == lookListing && s.srv.cfg.listing) {
				s.wait = string(s.keyBuf)
				return false
			}
		default:
			f, gz, ls = s.srv.cache.get(s.keyBuf, now, diskWait{})
		}
	}
	s.served++
	s.srv.requests.Add(1)
	if r.hasBody {
		s.closing = true // the body is not read: the stream cannot be reframed
	}
	switch {
	case !allowed:
		s.simple(r, 405, "Allow: GET, HEAD\r\n")
		return true
	case !ok:
		s.closing = true // a malformed target is a malformed request
		s.simple(r, 400, "")
		return true
	case !servable:
		s.simple(r, 404, "") // hidden
		return true
	}
	s.answer(r, rel, f, gz, ls, get)
	s.list = nil // answered, whichever way
	return true
}

// answer responds to r with what its path resolved to (f and gz acquired
// when ls is lookFile; answer takes the references).
func (s *session) answer(r *request, rel []byte, f, gz *file, ls lookupStatus, get bool) {
	switch ls {
	case lookFile:
	case lookRedirect:
		p := r.target
		q := []byte(nil)
		if i := bytes.IndexAny(p, "?#"); i >= 0 {
			p, q = p[:i], p[i:]
		}
		if i := bytes.Index(p, []byte("://")); i >= 0 { // absolute-form
			p = p[i+3:]
			if j := bytes.IndexByte(p, '/'); j >= 0 {
				p = p[j:]
			}
		}
		// One leading slash: "//docs/" would be a protocol-relative
		// URL, sending the browser to a host named docs.
		p = bytes.TrimLeft(p, "/\\")
		s.simple(r, 301, "Location: /"+string(p)+"/"+string(q)+"\r\n")
		return
	case lookListing:
		if s.srv.cfg.listing {
			s.listing(r, string(rel))
			return
		}
		s.simple(r, 403, "")
		return
	case lookNotFound:
		s.simple(r, 404, "")
		return
	case lookForbidden:
		s.simple(r, 403, "")
		return
	default:
		s.simple(r, 500, "")
		return
	}
	vary := gz != nil
	if gz != nil && r.gzip {
		f.release()
		f = gz
	} else if gz != nil {
		gz.release()
	}
	s.serveFile(r, f, vary, get)
}

// serveFile answers with f (acquired; serveFile takes the reference).
func (s *session) serveFile(r *request, f *file, vary, get bool) {
	if notModified(r, f) {
		s.head(r, 304)
		s.out = append(s.out, "ETag: "...)
		s.out = append(s.out, f.etag...)
		s.out = append(s.out, "\r\nLast-Modified: "...)
		s.out = append(s.out, f.lastMod...)
		s.out = append(s.out, "\r\n"...)
		if vary {
			s.out = append(s.out, "Vary: Accept-Encoding\r\n"...)
		}
		s.out = append(s.out, "\r\n"...)
		s.log(r, 304, 0)
		f.release()
		return
	}
	code, off, n := 200, int64(0), f.size
	// Range applies to GET only (RFC 9110 §14.2): HEAD gets the whole
	// file's headers.
	if get && r.rangeHdr != nil && ifRangeOK(r, f) {
		var st rangeStatus
		off, n, st = parseRange(r.rangeHdr, f.size)
		switch st {
		case rangeOK:
			code = 206
		case rangeUnsatisfiable:
			s.head(r, 416)
			s.out = append(s.out, "Content-Range: bytes */"...)
			s.out = strconv.AppendInt(s.out, f.size, 10)
			s.out = append(s.out, "\r\nContent-Length: 0\r\n\r\n"...)
			s.log(r, 416, 0)
			f.release()
			return
		default: // ignored: the whole file
			off, n = 0, f.size
		}
	}
	start := len(s.out)
	s.head(r, code)
	s.out = append(s.out, f.hdr...)
	if vary {
		s.out = append(s.out, "Vary: Accept-Encoding\r\n"...)
	}
	if code == 206 {
		s.out = append(s.out, "Content-Range: bytes "...)
		s.out = strconv.AppendInt(s.out, off, 10)
		s.out = append(s.out, '-')
		s.out = strconv.AppendInt(s.out, off+n-1, 10)
		s.out = append(s.out, '/')
		s.out = strconv.AppendInt(s.out, f.size, 10)
		s.out = append(s.out, "\r\n"...)
	}
	s.out = append(s.out, "Content-Length: "...)
	s.out = strconv.AppendInt(s.out, n, 10)
	s.out = append(s.out, "\r\n\r\n"...)
	switch {
	case !get || n == 0:
		s.log(r, code, 0)
		f.release()
	case f.body != nil:
		var p *prebuilt
		if s.prebuilt && code == 200 && n >= preMin {
			// Built only from a keep-alive HTTP/1.1 response, the kind
			// clients that repeat requests (and load generators) get.
			p = f.prebuiltFor(s.out[start:], !s.closing && r.minor == 1)
		}
		if p != nil {
			s.out = s.out[:start]
			s.segs = append(s.segs, segment{start: start, f: &p.file, n: p.size})
			s.srv.prebuilt.Add(1)
		} else {
			s.out = append(s.out, f.body[off:off+n]...)
		}
		s.log(r, code, n)
		f.release()
	default:
		// Logged once the transport has sent it: segDone.
		s.srv.status(code)
		var line []byte
		if s.srv.alog != nil {
			line = s.srv.alog.prefix(s.remote, r, code)
		}
		s.segs = append(s.segs, segment{start: len(s.out), f: f, off: off, n: n, logLine: line})
	}
}

// notModified applies If-None-Match, or If-Modified-Since when there is no
// If-None-Match (RFC 9110 §13.2.2).
func notModified(r *request, f *file) bool {
	if r.ifNoneMatch != nil {
		match := false
		forEachToken(r.ifNoneMatch, func(t []byte) {
			if string(t) == "*" || string(bytes.TrimPrefix(t, []byte("W/"))) == f.etag {
				match = true // weak comparison (§13.1.2)
			}
		})
		return match
	}
	if r.ifModifiedSince != nil {
		t, err := parseHTTPDate(r.ifModifiedSince)
		return err == nil && !f.mod.After(t)
	}
	return false
}

// ifRangeOK: no If-Range, or it names the current file: its strong ETag or
// exactly its Last-Modified date, when that is a strong validator: at
// least a second old, so that no change within its second can hide
// (RFC 9110 §13.1.5, §8.8.2.2).
func ifRangeOK(r *request, f *file) bool {
	v := r.ifRange
	if v == nil {
		return true
	}
	if len(v) > 0 && (v[0] == '"' || bytes.HasPrefix(v, []byte("W/"))) {
		return string(v) == f.etag
	}
	t, err := parseHTTPDate(v)
	return err == nil && t.Equal(f.mod) && time.Since(time.Unix(0, f.mtimeNs)) >= time.Second
}

// parseHTTPDate reads an HTTP date in IMF-fixdate or in the two obsolete
// formats recipients must still accept (RFC 9110 §5.6.7).
func parseHTTPDate(b []byte) (time.Time, error) {
	var t time.Time
	var err error
	for _, layout := range []string{timeFormat, time.RFC850, time.ANSIC} {
		if t, err = time.Parse(layout, string(b)); err == nil {
			break
		}
	}
	return t, err
}

type rangeStatus int

const (
	rangeIgnore rangeStatus = iota // absent, malformed or several ranges: send all
	rangeOK
	rangeUnsatisfiable
)

// parseRange reads a single "bytes=first-last", "bytes=first-" or
// "bytes=-suffix". Several ranges are answered with the whole file, which
// RFC 9110 §14.2 allows.
func parseRange(v []byte, size int64) (off, n int64, st rangeStatus) {
	v, ok := bytes.CutPrefix(v, []byte("bytes="))
	if !ok || bytes.IndexByte(v, ',') >= 0 {
		return 0, 0, rangeIgnore
	}
	v = trimOWS(v)
	dash := bytes.IndexByte(v, '-')
	if dash < 0 {
		return 0, 0, rangeIgnore
	}
	a, b := v[:dash], v[dash+1:]
	first, okA := atoi64(a)
	last, okB := atoi64(b)
	switch {
	case len(a) == 0 && okB: // suffix
		if last == 0 || size == 0 {
			return 0, 0, rangeUnsatisfiable
		}
		n = min(last, size)
		return size - n, n, rangeOK
	case okA && len(b) == 0:
		last = size - 1
	case okA && okB:
		if last < first {
			return 0, 0, rangeIgnore
		}
		last = min(last, size-1)
	default:
		return 0, 0, rangeIgnore
	}
	if first >= size {
		return 0, 0, rangeUnsatisfiable
	}
	return first, last - first + 1, rangeOK
}

func atoi64(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// dirListing is an HTML index of a directory, or the status that stands
// for it when the directory cannot be read.
type dirListing struct {
	code int // 200, or 404 or 500
	body []byte
}

// listDir builds the listing of the directory rel: names escaped, sorted,
// dotfiles left out unless served. It reads the whole directory, so the
// transports run it off the loop (lookUpOff); not a hot path, it reads the
// directory each time.
func (srv *server) listDir(rel string) *dirListing {
	fd, err := openBeneath(srv.root, rel, diskWait{})
	if err != nil {
		return &dirListing{code: 404}
	}
	// The directory's types come with its entries (getdents' d_type), so
	// there is no lstat(2) per entry; where a file system gives no type,
	// os stats the entry relative to this descriptor, beneath the root.
	d := os.NewFile(uintptr(fd), rel)
	entries, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return &dirListing{code: 500}
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	var b bytes.Buffer
	title := html.EscapeString("/" + rel)
	b.WriteString("<!doctype html>\n<meta charset=\"utf-8\">\n<title>Index of " + title + "</title>\n<h1>Index of " + title + "</h1>\n<ul>\n")
	for _, e := range entries {
		n := e.Name()
		if n[0] == '.' && !srv.cfg.dotfiles {
			continue
		}
		href := (&url.URL{Path: n}).EscapedPath()
		if e.IsDir() {
			href += "/"
			n += "/"
		}
		b.WriteString("<li><a href=\"./" + html.EscapeString(href) + "\">" + html.EscapeString(n) + "</a></li>\n")
	}
	b.WriteString("</ul>\n")
	return &dirListing{code: 200, body: b.Bytes()}
}

// listing answers r with the listing of the directory rel: the one built
// off the loop for it, or one built here on a transport that may wait.
func (s *session) listing(r *request, rel string) {
	l := s.list
	s.list = nil
	if l == nil {
		l = s.srv.listDir(rel)
	}
	if l.code != 200 {
		s.simple(r, l.code, "")
		return
	}
	s.head(r, 200)
	s.out = append(s.out, "Content-Type: text/html; charset=utf-8\r\nContent-Length: "...)
	s.out = strconv.AppendInt(s.out, int64(len(l.body)), 10)
	s.out = append(s.out, "\r\n\r\n"...)
	if string(r.method) != "HEAD" {
		s.out = append(s.out, l.body...)
		s.log(r, 200, int64(len(l.body)))
	} else {
		s.log(r, 200, 0)
	}
}

func (s *session) log(r *request, code int, n int64) {
	s.srv.status(code)
	if s.srv.alog == nil {
		return
	}
	s.srv.alog.entry(s.remote, r, code, n)
}

// dateNow caches the Date header value per second (a Format per request
// would cost more than the rest of a cached response).
type dateStamp struct {
	sec int64
	b   []byte
}

var dateNow atomic.Pointer[dateStamp]

func httpDate() []byte {
	now := time.Now()
	if d := dateNow.Load(); d != nil && d.sec == now.Unix() {
		return d.b
	}
	d := &dateStamp{sec: now.Unix(), b: now.UTC().AppendFormat(nil, timeFormat)}
	dateNow.Store(d)
	return d.b
}
