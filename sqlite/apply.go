package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Page is one database page image; No is 1-based.
type Page struct {
	No   uint32
	Data []byte
}

// rawConnector opens connections without the authorizer: only ephpm's own
// code (the page applier) uses them.
type rawConnector struct{ dsn string }

func (c rawConnector) Connect(context.Context) (driver.Conn, error) {
	drvMu.RLock()
	defer drvMu.RUnlock()
	return drv.Open(c.dsn)
}

func (c rawConnector) Driver() driver.Driver { return drv }

// ApplyPages writes page images from the primary into this (replica)
// database as one transaction, so readers see all of them or none, and
// truncates the file to size pages. Pages must be in ascending order
// without duplicates. It holds the writer lease, which on a replica no
// client can take.
//
// It writes through SQLite's sqlite_dbpage table from a connection whose
// main schema is in memory and the site file attached, the layout
// sqlite3_rsync uses (writing page 1 with the file as main schema fails).
func (db *DB) ApplyPages(ctx context.Context, pages []Page, size uint32) error {
	w, err := db.acquire(ctx)
	if err != nil {
		return err
	}
	defer w.Release(ctx)
	return db.ApplyPagesHeld(ctx, pages, size)
}

// ApplyPagesFunc is ApplyPages with the pages coming from next (until it
// reports false), so a whole snapshot is applied as one transaction
// without holding it in memory.
func (db *DB) ApplyPagesFunc(ctx context.Context, size uint32, next func() (Page, bool, error)) error {
	w, err := db.acquire(ctx)
	if err != nil {
		return err
	}
	defer w.Release(ctx)
	return db.applyHeld(ctx, size, next)
}

// ApplyPagesHeld is ApplyPages for a caller that holds the writer
// (WithWriter): a primary repairing its database from its own log.
func (db *DB) ApplyPagesHeld(ctx context.Context, pages []Page, size uint32) error {
	i := 0
	return db.applyHeld(ctx, size, func() (Page, bool, error) {
		if i == len(pages) {
			return Page{}, false, nil
		}
		i++
		return pages[i-1], true, nil
	})
}

func (db *DB) applyHeld(ctx context.Context, size uint32, next func() (Page, bool, error)) error {
	db.applyMu.Lock()
	defer db.applyMu.Unlock()
	conn, err := db.applier(ctx)
	if err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("apply: begin: %w", err)
	}
	fail := func(err error) error {
		if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil {
			// The connection may still be inside the transaction (or
			// SQLite ended it already): the next apply starts on a new
			// one rather than fail on BEGIN.
			db.dropApplierLocked()
			return fmt.Errorf("apply: %w (rollback: %w)", err, rerr)
		}
		return fmt.Errorf("apply: %w", err)
	}
	var last uint32
	for {
		p, ok, err := next()
		if err != nil {
			return fail(err)
		}
		if !ok {
			break
		}
		if len(p.Data) != PageSize {
			return fail(fmt.Errorf("page %d: %d bytes", p.No, len(p.Data)))
		}
		if p.No == 0 || p.No > size || p.No <= last {
			return fail(fmt.Errorf("page %d out of order or beyond database size %d", p.No, size))
		}
		last = p.No
		if _, err := conn.ExecContext(ctx, "INSERT INTO sqlite_dbpage(pgno,data,schema) VALUES(?,?,'r')", int64(p.No), p.Data); err != nil {
			return fail(fmt.Errorf("page %d: %w", p.No, err))
		}
	}
	// The truncation row must be the last write of the transaction.
	if _, err := conn.ExecContext(ctx, "INSERT INTO sqlite_dbpage(pgno,data,schema) VALUES(?,NULL,'r')", int64(size)+1); err != nil {
		return fail(fmt.Errorf("truncate to %d pages: %w", size, err))
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fail(fmt.Errorf("commit: %w", err))
	}
	db.applied.Add(1)
	if db.cfg.CheckpointPages >= 0 {
		// The pages are committed: a checkpoint that fails (or a WAL we
		// cannot stat) loses nothing, the WAL keeps them until the next.
		if fi, err := os.Stat(db.cfg.Path + "-wal"); err == nil && fi.Size() >= int64(db.cfg.CheckpointPages)*PageSize {
			if _, err := conn.ExecContext(ctx, "PRAGMA r.wal_checkpoint(TRUNCATE)"); err != nil {
				db.log.Warn("replica checkpoint failed", "err", err)
			}
		}
	}
	return nil
}

// Applied counts ApplyPages calls: a change means the schema or data
// changed underneath cached metadata.
func (db *DB) Applied() uint64 { return db.applied.Load() }

// applier opens (once) the page-writing connection. Caller holds applyMu.
func (db *DB) applier(ctx context.Context) (*sql.Conn, error) {
	if db.applyConn != nil {
		return db.applyConn, nil
	}
	db.apply = sql.OpenDB(rawConnector{dsn: ":memory:"})
	db.apply.SetMaxOpenConns(1)
	conn, err := db.apply.Conn(ctx)
	if err != nil {
		db.apply.Close()
		db.apply = nil
		return nil, fmt.Errorf("apply: open: %w", err)
	}
	path := "file:" + strings.ReplaceAll(db.cfg.Path, "'", "''")
	for _, q := range []string{
		"ATTACH '" + path + "' AS r",
		fmt.Sprintf("PRAGMA busy_timeout=%d", db.cfg.BusyTimeout.Milliseconds()),
		"PRAGMA r.wal_autocheckpoint=0",
		"PRAGMA r.synchronous=NORMAL",
		"PRAGMA writable_schema=ON",
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			conn.Close()
			db.apply.Close()
			db.apply = nil
			return nil, fmt.Errorf("apply: %s: %w", q, err)
		}
	}
	var mode string
	if err := conn.QueryRowContext(ctx, "PRAGMA r.journal_mode").Scan(&mode); err != nil || !strings.EqualFold(mode, "wal") {
		conn.Close()
		db.apply.Close()
		db.apply = nil
		return nil, errors.Join(fmt.Errorf("apply: replica journal mode %q", mode), err)
	}
	db.applyConn = conn
	return conn, nil
}

// dropApplierLocked closes the page-writing connection after a failure
// that may have left it in a transaction; the next apply opens another.
// Caller holds applyMu.
func (db *DB) dropApplierLocked() {
	if db.applyConn == nil {
		return
	}
	if err := errors.Join(db.applyConn.Close(), db.apply.Close()); err != nil {
		db.log.Warn("closing the page applier", "err", err)
	}
	db.applyConn, db.apply = nil, nil
}

// closeApplier is called by Close.
func (db *DB) closeApplier() error {
	db.applyMu.Lock()
	defer db.applyMu.Unlock()
	if db.applyConn == nil {
		return nil
	}
	err := errors.Join(db.applyConn.Close(), db.apply.Close())
	db.applyConn, db.apply = nil, nil
	return err
}

// Hash returns a SHA-256 over every page of the database at path as a
// reader sees it now (WAL included), and the page count: two nodes hold
// the same database exactly when their hashes are equal. Page 1's file
// change counter and version-valid-for fields are left out: SQLite's pager
// stamps them itself on every commit, so they count local commits.
func Hash(ctx context.Context, path string) (string, int, error) {
	sdb := sql.OpenDB(rawConnector{dsn: "file:" + path + "?mode=ro"})
	defer sdb.Close()
	sdb.SetMaxOpenConns(1)
	conn, err := sdb.Conn(ctx)
	if err != nil {
		return "", 0, err
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return "", 0, err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, "SELECT pgno, data FROM sqlite_dbpage ORDER BY pgno")
	if err != nil {
		return "", 0, fmt.Errorf("hash %s: %w", path, err)
	}
	defer rows.Close()
	h := sha256.New()
	n := 0
	for rows.Next() {
		var no int64
		var data []byte
		if err := rows.Scan(&no, &data); err != nil {
			return "", 0, err
		}
		if no == 1 && len(data) >= 100 {
			// Each node's pager stamps its own change counter into page 1
			// on every commit (also when applying the primary's page 1).
			data = append([]byte(nil), data...)
			clear(data[24:28])
			clear(data[92:100])
		}
		h.Write(data)
		n++
	}
	if err := rows.Err(); err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
