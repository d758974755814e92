// Package logbuf buffers a server's log output: an access-log line
// costs no system call of its own.
package logbuf

import (
	"bufio"
	"context"
	"io"
	"sync"
	"time"

	"github.com/ephpm/ephpm/internal/task"
)

// logFlushInterval bounds how long a log line may sit in the buffer.
const logFlushInterval = 200 * time.Millisecond

// Writer buffers log output so an access log line costs no syscall
// of its own; an owned goroutine flushes it periodically.
type Writer struct {
	mu    sync.Mutex
	w     *bufio.Writer
	tasks *task.Group // the flusher
}

func New(w io.Writer) *Writer {
	lw := &Writer{w: bufio.NewWriterSize(w, 64<<10), tasks: task.NewGroup(context.Background())}
	lw.tasks.Every(logFlushInterval, func(context.Context) { lw.flush() })
	return lw
}

func (lw *Writer) Write(p []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return lw.w.Write(p)
}

func (lw *Writer) flush() error {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return lw.w.Flush()
}

// Close stops the flusher and flushes.
func (lw *Writer) Close() error {
	lw.tasks.Close()
	return lw.flush()
}
