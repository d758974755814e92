// Package ephpm holds the domain types and sentinel errors shared by the
// parts of the ephpm PHP application server. Each part lives in its own
// package (config, httpd, fastcgi, phpfpm, kv, sqlite, mysqlwire, ...);
// only cmd/ephpm wires them together.
package ephpm

import "errors"

// Version is the release version, set at build time with
// -ldflags "-X github.com/ephpm/ephpm.Version=...".
var Version = "0.1.0-dev"

// ErrNotPrimary is returned by a write on a node that is not the primary
// for the site; callers forward the write to the primary.
var ErrNotPrimary = errors.New("not the primary for this site")

// ErrNeedSnapshot is returned by a frame log asked for frames older than
// its first retained frame; the reader must bootstrap from a snapshot.
var ErrNeedSnapshot = errors.New("frames compacted away: snapshot needed")

// ErrNoLease is returned by a write on a cluster site's primary that does
// not hold its lease (it lapsed, or was not granted for the site's
// epoch): the write is refused at once, reads are still served. The
// MySQL front answers 1290, the HTTP front 503.
var ErrNoLease = errors.New("this node holds no primary lease for the site")

// ErrCommitUnconfirmed is returned for a commit of a site with
// sync = "replica" that no replica confirmed within the bound: the
// transaction is committed on the primary, but the client must not take
// it as acknowledged (it may be lost if the primary fails now).
var ErrCommitUnconfirmed = errors.New("commit not confirmed by any replica")
