package main

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

// logWriter buffers log output so an access log line costs no syscall
// of its own; an owned goroutine flushes it periodically.
type logWriter struct {
	mu    sync.Mutex
	w     *bufio.Writer
	tasks *task.Group // the flusher
}

func newLogWriter(w io.Writer) *logWriter {
	lw := &logWriter{w: bufio.NewWriterSize(w, 64<<10), tasks: task.NewGroup(context.Background())}
	lw.tasks.Every(logFlushInterval, func(context.Context) { lw.flush() })
	return lw
}

func (lw *logWriter) Write(p []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return lw.w.Write(p)
}

func (lw *logWriter) flush() error {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return lw.w.Flush()
}

// Close stops the flusher and flushes.
func (lw *logWriter) Close() error {
	lw.tasks.Close()
	return lw.flush()
}
