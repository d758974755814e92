package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// PageSnapshot is a read transaction on a database file's pages
// (sqlite_dbpage): every page it reads is as of the moment it began,
// whatever commits after. A replica rejoining compares and copies pages
// with it (the sqlite3_rsync way); its own connection, outside the pool,
// without the authorizer. While it is open a checkpoint cannot pass its
// snapshot (a TRUNCATE one reports busy): close it soon.
type PageSnapshot struct {
	sdb   *sql.DB
	conn  *sql.Conn
	tx    *sql.Tx
	pages uint32
}

// OpenPageSnapshot begins a read transaction on the database at path
// and fixes its snapshot at once (it reads page 1 and the page count),
// so a caller holding the writer while it opens knows which commit the
// snapshot shows.
func OpenPageSnapshot(ctx context.Context, path string) (*PageSnapshot, error) {
	s := &PageSnapshot{sdb: sql.OpenDB(rawConnector{dsn: "file:" + path + "?mode=ro"})}
	s.sdb.SetMaxOpenConns(1)
	fail := func(err error) (*PageSnapshot, error) {
		return nil, errors.Join(fmt.Errorf("page snapshot %s: %w", path, err), s.Close())
	}
	var err error
	if s.conn, err = s.sdb.Conn(ctx); err != nil {
		return fail(err)
	}
	if s.tx, err = s.conn.BeginTx(ctx, &sql.TxOptions{ReadOnly: true}); err != nil {
		return fail(err)
	}
	// The first read starts the snapshot (BEGIN is deferred).
	var n int64
	if err := s.tx.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_dbpage WHERE pgno=1").Scan(&n); err != nil {
		return fail(err)
	}
	if err := s.tx.QueryRowContext(ctx, "PRAGMA page_count").Scan(&n); err != nil {
		return fail(err)
	}
	if n < 0 || n > 1<<31 {
		return fail(fmt.Errorf("page count %d", n))
	}
	s.pages = uint32(n)
	return s, nil
}

// Pages is the database's size in pages in this snapshot.
func (s *PageSnapshot) Pages() uint32 { return s.pages }

// Each calls fn with every page in order (data is reused after fn
// returns).
func (s *PageSnapshot) Each(ctx context.Context, fn func(no uint32, data []byte) error) error {
	rows, err := s.tx.QueryContext(ctx, "SELECT pgno, data FROM sqlite_dbpage ORDER BY pgno")
	if err != nil {
		return fmt.Errorf("page snapshot: %w", err)
	}
	defer rows.Close()
	var data []byte
	for rows.Next() {
		var no int64
		if err := rows.Scan(&no, &data); err != nil {
			return fmt.Errorf("page snapshot: %w", err)
		}
		if len(data) != PageSize {
			return fmt.Errorf("page snapshot: page %d has %d bytes", no, len(data))
		}
		if err := fn(uint32(no), data); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("page snapshot: %w", err)
	}
	return rows.Close()
}

// Page reads page no into a new slice.
func (s *PageSnapshot) Page(ctx context.Context, no uint32) ([]byte, error) {
	var data []byte
	if err := s.tx.QueryRowContext(ctx, "SELECT data FROM sqlite_dbpage WHERE pgno=?", int64(no)).Scan(&data); err != nil {
		return nil, fmt.Errorf("page snapshot: page %d: %w", no, err)
	}
	if len(data) != PageSize {
		return nil, fmt.Errorf("page snapshot: page %d has %d bytes", no, len(data))
	}
	return data, nil
}

// Close ends the read transaction. It only read: its errors lose nothing.
func (s *PageSnapshot) Close() error {
	var errs []error
	if s.tx != nil {
		if err := s.tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
			errs = append(errs, err)
		}
	}
	if s.conn != nil {
		errs = append(errs, s.conn.Close())
	}
	errs = append(errs, s.sdb.Close())
	return errors.Join(errs...)
}

// NormalizePage1 clears the fields of page 1 each node's pager stamps
// itself (the file change counter and version-valid-for), as Hash does,
// so that two copies of one state compare equal; it copies only page 1.
func NormalizePage1(no uint32, data []byte) []byte {
	if no != 1 || len(data) < 100 {
		return data
	}
	d := append([]byte(nil), data...)
	clear(d[24:28])
	clear(d[92:100])
	return d
}
