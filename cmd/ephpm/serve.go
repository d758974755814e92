package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/config"
	"github.com/ephpm/ephpm/fastcgi"
	"github.com/ephpm/ephpm/httpd"
	"github.com/ephpm/ephpm/phpfpm"
)

func loadConfig(f *serveFlags) (*config.Config, error) {
	cfg, err := config.Load(f.config, os.Environ())
	if err != nil {
		return nil, err
	}
	// Flags win over the file and the environment.
	if f.listen != "" || f.root != "" {
		if f.listen != "" {
			cfg.Server.Listen = f.listen
		}
		if f.root != "" {
			cfg.Server.DocumentRoot = f.root
		}
		if err := cfg.Validate(); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

func findFPM(cfg *config.Config) (string, error) {
	return phpfpm.Find(cfg.PHP.FPMBinary)
}

// serve runs the node until ctx ends, then drains and stops everything.
func serve(ctx context.Context, cfg *config.Config, stdout io.Writer) error {
	logw := newLogWriter(stdout)
	defer logw.Close()
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Server.LogLevel))
	log := slog.New(slog.NewJSONHandler(logw, &slog.HandlerOptions{Level: level}))

	root, err := cfg.Root()
	if err != nil {
		return err
	}
	runDir := cfg.Server.RuntimeDir
	if runDir == "" {
		if runDir, err = os.MkdirTemp("", "ephpm-run-"); err != nil {
			return fmt.Errorf("runtime dir: %w", err)
		}
		defer os.RemoveAll(runDir)
	} else if err := os.MkdirAll(runDir, 0o700); err != nil {
		return fmt.Errorf("runtime dir: %w", err)
	}
	// PHP (an unprivileged user when we are root) must reach the KV and
	// MySQL sockets: traverse-only on the run dir, a readable sock dir.
	sockDir := filepath.Join(runDir, "sock")
	if err := os.MkdirAll(sockDir, 0o755); err != nil {
		return fmt.Errorf("socket dir: %w", err)
	}
	_ = os.Chmod(runDir, 0o711)
	_ = os.Chmod(sockDir, 0o755)

	if addr := os.Getenv("EPHPM_PPROF"); addr != "" {
		startPprof(addr, log)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	// PHP's own body limits follow max_body_size unless overridden.
	ini := map[string]string{
		"post_max_size":       cfg.Server.Request.MaxBodySize.PHPString(),
		"upload_max_filesize": cfg.Server.Request.MaxBodySize.PHPString(),
	}
	for k, v := range cfg.PHP.IniOverrides {
		ini[k] = v
	}
	sup, err := phpfpm.New(phpfpm.Config{
		Binary:           cfg.PHP.FPMBinary,
		RuntimeDir:       filepath.Join(runDir, "php-fpm"),
		Workers:          cfg.PHP.Workers,
		User:             cfg.PHP.User,
		MemoryLimit:      cfg.PHP.MemoryLimit.PHPString(),
		MaxExecutionTime: cfg.PHP.MaxExecutionTime.D(),
		INI:              ini,
		Logger:           log.WithGroup("phpfpm"),
	})
	if err != nil {
		return err
	}
	if err := sup.Start(ctx); err != nil {
		return fmt.Errorf("start php-fpm: %w", err)
	}
	defer sup.Close()

	php := fastcgi.NewClient(fastcgi.Config{Network: "unix", Address: sup.Socket(), MaxConns: cfg.PHP.Workers, MaxIdle: cfg.PHP.Workers})
	defer php.Close()
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "ephpm_php_pool_busy", Help: "FastCGI connections in use."},
			func() float64 { b, _ := php.Stats(); return float64(b) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "ephpm_php_pool_idle", Help: "Idle kept-alive FastCGI connections."},
			func() float64 { _, i := php.Stats(); return float64(i) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "ephpm_php_workers", Help: "php-fpm worker processes (pm=static)."},
			func() float64 { return float64(cfg.PHP.Workers) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "ephpm_phpfpm_restarts_total", Help: "php-fpm restarts after it died."},
			func() float64 { return float64(sup.Restarts()) }),
	)

	var siteParams []fastcgi.Param
	if cfg.DB.SQLite.Proxy.Enabled {
		_, stopDB, params, err := startDB(ctx, cfg, root, sockDir, log)
		if err != nil {
			return err
		}
		defer stopDB()
		siteParams = append(siteParams, params...)
	}
	if cfg.KV.Enabled {
		kvs, params, err := startKV(ctx, cfg, sockDir, log, reg)
		if err != nil {
			return err
		}
		defer kvs.Close()
		siteParams = append(siteParams, params...)
	}

	site := &httpd.Site{
		Name:         "default",
		Root:         root,
		IndexFiles:   cfg.Server.IndexFiles,
		Fallback:     cfg.Server.Fallback,
		CacheControl: cfg.Server.Static.CacheControl,
		PHP:          php,
		Params:       siteParams,
	}
	front, err := httpd.New(httpd.Config{
		Sites:          httpd.SingleSite{S: site},
		TrustedProxies: cfg.Server.TrustedProxies,
		MaxBodySize:    int64(cfg.Server.Request.MaxBodySize),
		MaxHeaderSize:  int(cfg.Server.Request.MaxHeaderSize),
		RequestTimeout: cfg.Server.Timeouts.Request.D(),
		Compression:    cfg.Server.Response.Compression,
		CompressMin:    int64(cfg.Server.Response.CompressionMinSize),
		AccessLog:      cfg.Server.AccessLog,
		MetricsPublic:  cfg.Server.Metrics.Public,
		Ready:          sup.Ready,
		Registry:       reg,
		Logger:         log.WithGroup("http"),
		TmpDir:         runDir,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	log.Info("serving", "version", ephpm.Version, "http", ln.Addr().String(), "root", root, "php_workers", cfg.PHP.Workers)
	errc := make(chan error, 1)
	go func() { errc <- front.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: draining requests", "timeout", cfg.Server.Timeouts.Shutdown.String())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Server.Timeouts.Shutdown.D())
	defer cancel()
	if err := front.Shutdown(sctx); err != nil {
		log.Warn("shutdown: requests still running at the deadline", "err", err)
	}
	<-errc
	log.Info("stopped")
	return nil
}
