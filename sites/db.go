package sites

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ephpm/ephpm/mysqlwire"
	"github.com/ephpm/ephpm/sqlite"
)

var _ mysqlwire.Directory = (*Directory)(nil)

// Directory gives each site its own MySQL account over its own database.
type Directory struct {
	R    *Registry
	Pool *sqlite.Pool
	// Forward, if set, gives a replica site's write forwarder. It is
	// called by Lookup, on the goroutine of the MySQL login it serves,
	// and must not block.
	Forward func(site string) mysqlwire.Forwarder
}

// Lookup implements mysqlwire.Directory: the user name is the site name.
func (d *Directory) Lookup(_ context.Context, user string) (*mysqlwire.Account, error) {
	s, err := d.R.Get(user)
	if errors.Is(err, ErrNoSite) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if s.Err != nil {
		return nil, nil
	}
	path := s.DBPath
	var fwd mysqlwire.Forwarder
	// Every replicated site gets one, a primary's too: its role may
	// change while the connection lives (a change of primary), and the
	// MySQL front forwards only while the database is read-only.
	// On a cluster node the directory, not site.toml, makes a site
	// replicated.
	if d.Forward != nil && (s.Conf.Replication.Role != "" || d.R.cfg.Global.Cluster.Enabled) {
		fwd = d.Forward(s.Name)
	}
	return &mysqlwire.Account{
		Forward: fwd,
		User:    s.DBUser, Password: s.DBPassword, Database: s.DBName,
		Open: func(ctx context.Context) (*sqlite.DB, func(), error) {
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				return nil, nil, fmt.Errorf("database dir: %w", err)
			}
			return d.Pool.Acquire(ctx, path)
		},
	}, nil
}
