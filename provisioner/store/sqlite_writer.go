package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"time"

	"gorm.io/gorm"
)

// writerPool lets one writer at a time of this process at a SQLite
// database: every transaction (all begin IMMEDIATE, so each takes the
// write lock) and every statement outside one that is not a SELECT first
// takes the turn, which is handed on in arrival order. SQLite's own busy
// handler polls with growing sleeps, so under many writers some wait far
// longer than others and run into the busy timeout ("database is
// locked"); queued here, each waits only for those ahead of it. The busy
// timeout still arbitrates with other processes on the same file. Reads
// outside transactions go straight to the pool: WAL lets them run beside
// the writer.
type writerPool struct {
	db   *sql.DB
	turn chan struct{} // holds a token while a writer runs
	wait time.Duration // longest wait for the turn
}

// writerWait bounds the wait for the writer's turn, as long as the busy
// timeout of the SQLite connections.
const writerWait = 10 * time.Second

func newWriterPool(db *sql.DB, wait time.Duration) *writerPool {
	return &writerPool{db: db, turn: make(chan struct{}, 1), wait: wait}
}

// acquire waits for the writer's turn, no longer than wait or ctx allow.
// Blocked senders on a channel are served in order, which makes the turn fair.
func (p *writerPool) acquire(ctx context.Context) (release func(), err error) {
	t := time.NewTimer(p.wait)
	defer t.Stop()
	select {
	case p.turn <- struct{}{}:
		var once sync.Once
		return func() { once.Do(func() { <-p.turn }) }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
		return nil, fmt.Errorf("wait %s for the database write lock: %w", p.wait, ErrUnavailable)
	}
}

// GetDBConn gives gorm the pool underneath, for DB().
func (p *writerPool) GetDBConn() (*sql.DB, error) { return p.db, nil }

func (p *writerPool) BeginTx(ctx context.Context, opts *sql.TxOptions) (gorm.ConnPool, error) {
	release, err := p.acquire(ctx)
	if err != nil {
		return nil, err
	}
	tx, err := p.db.BeginTx(ctx, opts)
	if err != nil {
		release()
		return nil, err
	}
	return &writerTx{Tx: tx, release: release}, nil
}

func (p *writerPool) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	return p.db.PrepareContext(ctx, query)
}

func (p *writerPool) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if !isRead(query) {
		release, err := p.acquire(ctx)
		if err != nil {
			return nil, err
		}
		defer release()
	}
	return p.db.ExecContext(ctx, query, args...)
}

func (p *writerPool) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if !isRead(query) {
		// An INSERT … RETURNING: SQLite runs it to completion on the first
		// step, so the turn can pass on while its rows are read.
		release, err := p.acquire(ctx)
		if err != nil {
			return nil, err
		}
		defer release()
	}
	return p.db.QueryContext(ctx, query, args...)
}

func (p *writerPool) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if !isRead(query) {
		// A *sql.Row cannot carry an error of ours: past the wait, the
		// statement goes ahead and the busy timeout decides.
		release, err := p.acquire(ctx)
		if err == nil {
			defer release()
		}
	}
	return p.db.QueryRowContext(ctx, query, args...)
}

// isRead tells a statement that writes nothing.
func isRead(query string) bool {
	q := strings.TrimSpace(query)
	return len(q) >= 6 && strings.EqualFold(q[:6], "SELECT")
}

// writerTx is a transaction holding the writer's turn until it ends.
type writerTx struct {
	*sql.Tx
	release func()
}

func (t *writerTx) Commit() error {
	defer t.release()
	return t.Tx.Commit()
}

func (t *writerTx) Rollback() error {
	defer t.release()
	return t.Tx.Rollback()
}
