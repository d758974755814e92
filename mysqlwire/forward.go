package mysqlwire

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"vitess.io/vitess/go/mysql"
	"vitess.io/vitess/go/sqltypes"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/sqlxlate"
)

// Forwarder sends the writes of a replica site's sessions to the site's
// primary. Account.Forward is set for replicated sites; it is used only
// while the site's database is read-only (a replica).
type Forwarder interface {
	// Open starts a session on the primary (lazily: nothing is sent until
	// the first statement). It is called on a client connection's
	// goroutine, at its first statement that leaves the replica, by many
	// connections at once; it must not block.
	Open() ForwardSession
}

// ForwardSession is one client connection's session on the primary: a
// transaction begun there stays on one primary connection until it ends.
//
// Its methods are called only on the goroutine serving that client
// connection, one at a time, and never after Close. Exec blocks for the
// round trip to the primary, Wait for at most the replica's wait bound;
// while they block, the connection's next command waits. Close is
// called once, when the client disconnects or resets its connection.
// None of them may call back into the MySQL server.
type ForwardSession interface {
	// Exec runs a statement (with ? arguments for prepared statements) on
	// the primary. Errors the primary's SQL produced are *ephpm.SQLError
	// (sent to the client as they are); any other error is 1105.
	Exec(ctx context.Context, query string, args []any) (*ephpm.Result, error)
	// InTx reports whether the primary session is inside a transaction.
	InTx() bool
	// Wait holds a local read until this replica has applied the
	// session's own last write; false means it has not in time, and the
	// read must go to the primary too.
	Wait(ctx context.Context) bool
	Close()
}

// ErrPrimaryChanged, returned (wrapped) by ForwardSession.Exec, says the
// site's primary moved since the session began there, outside a
// transaction: the server opens a new session (replaying the session's
// SET statements) and sends the statement again.
var ErrPrimaryChanged = errors.New("the site's primary changed")

// ErrPrimaryHere, returned (wrapped) by ForwardSession.Exec, says this
// node has become the site's primary while its copy is still read-only
// (the promotion is finishing): the statement runs here once the
// database is writable.
var ErrPrimaryHere = errors.New("this node is becoming the site's primary")

// promotionWait bounds how long a statement waits for a promotion to
// make the database writable.
const promotionWait = 3 * time.Second

// localPlan reports whether a statement may run on a replica's own copy:
// reads, and session statements that change nothing in the database.
func localPlan(k sqlxlate.Kind) bool {
	switch k {
	case sqlxlate.KindQuery, sqlxlate.KindSet, sqlxlate.KindUse, sqlxlate.KindResult, sqlxlate.KindNoop:
		return true
	}
	return false
}

// forward decides whether a statement goes to the primary, and sends it.
// handled is false when it runs locally.
func (s *session) forward(ctx context.Context, query string, plan *sqlxlate.Plan, args []any) (res *sqltypes.Result, handled bool, err error) {
	if s.acct.Forward == nil || !s.db.ReadOnly() {
		return nil, false, nil
	}
	inTx := s.fwd != nil && s.fwd.InTx()
	if localPlan(plan.Kind) && !inTx && s.autocommit {
		if plan.Kind == sqlxlate.KindSet {
			// Session settings follow the session to the primary.
			s.setHistory = append(s.setHistory, query)
			if s.fwd != nil {
				if _, err := s.fwd.Exec(ctx, query, nil); err != nil {
					return nil, true, err
				}
			}
			return nil, false, nil
		}
		if plan.Kind == sqlxlate.KindQuery && s.fwd != nil && !s.fwd.Wait(ctx) {
			// Our copy lags our own write: read it on the primary.
			nres, err := s.fwd.Exec(ctx, query, args)
			if err != nil {
				return nil, true, err
			}
			if res, err = fromResult(nres); err != nil {
				return nil, true, fmt.Errorf("the primary's result: %w", err)
			}
			return res, true, nil
		}
		return nil, false, nil
	}
	// Two rounds at most: the second after the primary moved.
	var nres *ephpm.Result
	for round := 0; ; round++ {
		if s.fwd == nil {
			s.fwd = s.acct.Forward.Open()
			for _, q := range s.setHistory {
				if _, err := s.fwd.Exec(ctx, q, nil); err != nil {
					return nil, true, err
				}
			}
		}
		nres, err = s.fwd.Exec(ctx, query, args)
		if errors.Is(err, ErrPrimaryHere) && !inTx {
			if werr := s.waitWritable(ctx); werr != nil {
				return nil, true, werr
			}
			return nil, false, nil // run here
		}
		if round == 0 && errors.Is(err, ErrPrimaryChanged) {
			s.fwd.Close()
			s.fwd = nil
			continue
		}
		if err != nil {
			return nil, true, err
		}
		break
	}
	if res, err = fromResult(nres); err != nil {
		return nil, true, fmt.Errorf("the primary's result: %w", err)
	}
	if plan.Kind == sqlxlate.KindExec {
		s.rowCount = int64(res.RowsAffected)
		if res.InsertID != 0 {
			s.lastInsertID = res.InsertID
		}
	}
	if plan.Kind == sqlxlate.KindSet {
		s.setHistory = append(s.setHistory, query)
	}
	return res, true, nil
}

// waitWritable waits (bounded) until a promotion made the database
// writable.
func (s *session) waitWritable(ctx context.Context) error {
	deadline := time.Now().Add(promotionWait)
	for s.db.ReadOnly() {
		if time.Now().After(deadline) {
			return fmt.Errorf("the site's copy here is still read-only %s after this node became its primary", promotionWait)
		}
		select {
		case <-time.After(5 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Detached is a MySQL session without a client connection: the primary
// runs the statements a replica forwards in one.
type Detached struct {
	mu sync.Mutex
	s  *session
}

// Detached opens a session for acct, as if a client had logged in.
func (srv *Server) Detached(acct *Account) *Detached {
	c := &mysql.Conn{}
	c.UserData = &accountData{acct: acct}
	c.StatusFlags |= mysql.ServerStatusAutocommit
	s := newSession(srv, c)
	s.database = acct.Database
	c.ClientData = s
	return &Detached{s: s}
}

// Run runs one statement. Its errors are *ephpm.SQLError.
func (d *Detached) Run(query string, args []any) (*ephpm.Result, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	res, err := d.s.runSQL(query, args)
	if err != nil {
		return nil, toNeutralError(err)
	}
	return toResult(res)
}

// InTx reports whether a transaction is open.
func (d *Detached) InTx() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.s.txActive() || d.s.w != nil
}

// Close rolls back an open transaction and releases the database.
func (d *Detached) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.s
	s.endTx(context.Background(), false)
	if s.hasTemp {
		s.dropTemps(context.Background())
	}
	if s.release != nil {
		s.srv.releaseSite(s.db)
		s.release()
		s.release = nil
	}
}
