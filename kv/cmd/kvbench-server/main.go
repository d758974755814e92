// Command kvbench-server runs ephpm's KV store alone, for benchmarks and
// manual testing with redis-cli until cmd/ephpm serves it.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/ephpm/ephpm/kv"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:6380", "TCP address")
	socket := flag.String("socket", "", "unix socket path")
	mem := flag.Int64("memory-limit", 0, "memory limit in bytes (0 = none)")
	eviction := flag.String("eviction", kv.DefaultEviction, "allkeys-lru or noeviction")
	password := flag.String("password", "", "requirepass")
	loops := flag.Int("loops", 0, "event loops (0 = kv.DefaultLoops())")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile here until exit")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	srv, err := kv.New(kv.Config{Listen: *listen, Socket: *socket, MemoryLimit: *mem, Eviction: *eviction, Password: *password, Loops: *loops, Logger: log})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := srv.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	<-ctx.Done()
	if err := srv.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
}
