// Package libsql serves libSQL's client protocols for ephpm sites: Hrana
// over HTTP (@libsql/client, libsql-client-go) and the embedded-replica
// sync protocols of the npm `libsql` package (v1 gRPC-Web ReplicationLog
// and Proxy, v2 HTTP /info, /export, /sync).
package libsql

import (
	"context"
	"errors"
	"net/http"

	"github.com/ephpm/ephpm/sqlite"
)

// FrameSize is one frame record as libSQL puts it on the wire (little
// endian): frame_no u64, checksum u64, page_no u32, size_after u32, then
// the 4096-byte page. size_after != 0 marks a transaction's commit frame.
const FrameSize = 24 + sqlite.PageSize

// Log is a site's replication frame log (package framelog implements it).
// Frame numbers are global, 0-based and gap-free. Its methods are called
// on request goroutines, many at once; only Wait blocks for long (until
// a frame comes or the call's context ends).
type Log interface {
	// ID is a UUID, stable across restarts; it changes only when the log
	// is reset (replicas must then bootstrap again).
	ID() string
	// Next is the number of the next frame to be written: 0 when empty.
	Next() uint64
	// ReadFrames appends to dst the FrameSize records with frame_no >= from,
	// at most max frames but always whole transactions (it may exceed max
	// to finish one), and returns dst. It returns ephpm.ErrNeedSnapshot
	// when from is older than the first retained frame.
	ReadFrames(dst []byte, from uint64, max int) ([]byte, error)
	// Wait returns when Next() > after, or with ctx's error.
	Wait(ctx context.Context, after uint64) error
	// Snapshot opens a consistent copy of the database pages as of the
	// end of a transaction.
	Snapshot(ctx context.Context) (Snapshot, error)
}

// Snapshot is the database as of the commit of frame End.
type Snapshot interface {
	End() uint64                          // the frame number the snapshot includes up to
	Pages() uint32                        // database size in pages
	ReadPage(no uint32, buf []byte) error // 1-based; len(buf) == sqlite.PageSize
	Close() error
}

// Site is what a request is served from.
type Site struct {
	Name string
	DB   *sqlite.DB // open for the request; read-only on a replica
	Log  Log        // nil when the site is not a replicated primary here
	// Release is called once, when the server is done with DB: on the
	// request's goroutine, or — when a client's transaction kept the
	// site past its request — on whichever goroutine ends that
	// transaction (a later request, the janitor when it expires,
	// Server.Close). It must not block.
	Release func()
	// Forward, set on a node that replicates the site, passes a request
	// (its body already read) to the site's primary and copies the answer
	// back: every write and transaction of a Hrana client, and the whole
	// embedded-replica protocol. Nil means everything is served here. It
	// is called on the request's goroutine and blocks for the whole
	// proxied request.
	Forward func(w http.ResponseWriter, r *http.Request, body []byte)
	// Reforward, if set, is asked when a Hrana request that began
	// outside a transaction had a write refused with ephpm.ErrNotPrimary
	// before it wrote anything here (the site's primary moved: a writer
	// waiting at the fence was woken by the demotion). It returns what
	// passes the whole request (its body, with no baton: this node's
	// stream is closed) on, as Forward does, or nil: the client then gets
	// the error. It is called on the request's goroutine.
	Reforward func() func(w http.ResponseWriter, r *http.Request, body []byte)
}

// Resolver authenticates a request and names its site. It returns an
// error wrapping ErrUnauthorized (→ 401) or ErrNoSite (→ 404). The server
// calls it once per request, on the request's goroutine, for many
// requests at once; it may block while the site's database opens,
// bounded by ctx (the request's). It must not call back into the Server.
type Resolver func(ctx context.Context, r *http.Request) (*Site, error)

// Errors a Resolver wraps.
var (
	ErrUnauthorized = errors.New("unauthorized")
	ErrNoSite       = errors.New("no such site")
)
