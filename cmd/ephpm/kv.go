package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ephpm/ephpm/config"
	"github.com/ephpm/ephpm/fastcgi"
	"github.com/ephpm/ephpm/kv"
)

// startKV starts the KV store and returns the EPHPM_KV_* variables PHP
// sees.
func startKV(ctx context.Context, cfg *config.Config, sockDir string, auth func(user, pass string) (string, int64, bool), log *slog.Logger, reg prometheus.Registerer) (*kv.Server, []fastcgi.Param, error) {
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
		return nil, nil, err
	}
	if err := s.Start(ctx); err != nil {
		return nil, nil, fmt.Errorf("start kv: %w", err)
	}
	_ = os.Chmod(sock, 0o666) // access is by password, as with Redis
	host, port := "", ""
	if a := s.Addr(); a != nil {
		host, port, _ = net.SplitHostPort(a.String())
	}
	log.Info("kv listening", "addr", cfg.KV.Listen, "socket", sock)
	return s, []fastcgi.Param{
		{Name: "EPHPM_KV_HOST", Value: host},
		{Name: "EPHPM_KV_PORT", Value: port},
		{Name: "EPHPM_KV_SOCKET", Value: sock},
		{Name: "EPHPM_KV_USER", Value: ""},
		{Name: "EPHPM_KV_PASSWORD", Value: cfg.KV.Password},
	}, nil
}
