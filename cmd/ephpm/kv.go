package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ephpm/ephpm/config"
	"github.com/ephpm/ephpm/internal/phpenv"
	"github.com/ephpm/ephpm/kv"
)

// startKV starts the KV store and returns where PHP reaches it.
func startKV(ctx context.Context, cfg *config.Config, sockDir string, auth func(user, pass string) (string, int64, bool), log *slog.Logger, reg prometheus.Registerer) (*kv.Server, phpenv.Endpoint, error) {
	sock := cfg.KV.Socket
	if sock == "" {
		sock = filepath.Join(sockDir, "kv.sock")
	}
	s, err := kv.New(kv.Config{
		Listen:         cfg.KV.Listen,
		AllowRemote:    cfg.KV.AllowRemote,
		Socket:         sock,
		MemoryLimit:    int64(cfg.KV.MemoryLimit),
		Eviction:       cfg.KV.Eviction,
		MaxConnections: cfg.KV.MaxConnections,
		Password:       cfg.KV.Password,
		AuthTimeout:    cfg.KV.AuthTimeout.D(),
		Auth:           auth,
		Logger:         log.WithGroup("kv"),
		Registerer:     reg,
	})
	if err != nil {
		return nil, phpenv.Endpoint{}, err
	}
	if err := s.Start(ctx); err != nil {
		return nil, phpenv.Endpoint{}, fmt.Errorf("start kv: %w", err)
	}
	_ = os.Chmod(sock, 0o666) // access is by password, as with Redis
	log.Info("kv listening", "addr", cfg.KV.Listen, "socket", sock)
	return s, phpenv.EndpointOf(s.Addr(), sock), nil
}
