// Package phpfpm supervises a php-fpm master: it writes the config ephpm
// needs, runs `php-fpm --nodaemonize` as a child, restarts it with backoff
// when it dies, and makes sure no php-fpm process outlives ephpm.
//
// Lifetime: php-fpm workers do NOT die when their master is SIGKILLed; they
// are reparented and keep the listening socket (a new master then fails
// with "Another FPM instance seems to already listen"). So:
//   - as root, the master starts in its own PID namespace: when it dies the
//     kernel kills every process in it; Pdeathsig is SIGKILL;
//   - otherwise Pdeathsig is SIGTERM, on which the master stops its workers;
//   - in both cases the master leads its own process group, which the
//     supervisor SIGKILLs after the master exited.
//
// Pdeathsig fires when the OS thread that forked the master exits, so the
// supervisor goroutine locks its thread for its whole life.
package phpfpm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	// DefaultWorkers is pm.max_children; keep fastcgi.Config.MaxConns at or
	// below it (php-fpm pins a worker to each kept-alive connection).
	DefaultWorkers = 4
	// DefaultStartTimeout bounds the wait for the socket after a start;
	// php-fpm normally listens within tens of milliseconds.
	DefaultStartTimeout = 10 * time.Second
	// DefaultStopTimeout is how long Close lets running requests finish
	// after SIGQUIT before it sends SIGTERM, then SIGKILL.
	DefaultStopTimeout = 10 * time.Second
	// DefaultMinBackoff and DefaultMaxBackoff bound the delay before a
	// restart; it doubles per crash and resets once php-fpm has stayed up
	// for DefaultStableAfter.
	DefaultMinBackoff  = 100 * time.Millisecond
	DefaultMaxBackoff  = 10 * time.Second
	DefaultStableAfter = 30 * time.Second
	// terminateMargin is added to MaxExecutionTime for
	// request_terminate_timeout: PHP's own limit (which excludes I/O wait)
	// should fire first, php-fpm's hard kill only as a backstop.
	terminateMargin = 5 * time.Second
	// maxSocketPath is the sun_path limit for unix sockets on Linux.
	maxSocketPath = 107
)

// ErrNotFound is returned by Find when no php-fpm binary is found.
var ErrNotFound = errors.New("php-fpm binary not found")

// Config configures a Supervisor. Zero fields get defaults in New.
type Config struct {
	// Binary is a path or a name in PATH; "" finds php-fpm8.2, php-fpm,
	// then the newest php-fpm8.* in PATH and /usr/sbin.
	Binary string
	// RuntimeDir holds php-fpm.conf, the socket, pid and logs (created 0700).
	RuntimeDir string
	// Workers is pm.max_children with pm = static.
	Workers int
	// User and Group run PHP when ephpm is root; default "www-data" if it
	// exists, else "nobody" (group: the user's primary group).
	User, Group string
	// MemoryLimit is php_admin_value[memory_limit], e.g. "128M".
	MemoryLimit string
	// MaxExecutionTime sets max_execution_time and, with a margin,
	// request_terminate_timeout. 0 leaves PHP's default and no hard limit.
	MaxExecutionTime time.Duration
	// INI entries become php_admin_value[name] (scripts cannot override them).
	INI map[string]string
	// Env is the pool's environment (clear_env = yes: nothing else leaks in).
	Env map[string]string
	// Defines are php.ini settings given to the master with -d: the ones
	// read once at startup (opcache.file_cache_only), which a pool's
	// php_admin_value comes too late for.
	Defines map[string]string
	// NoPIDNamespace disables the PID namespace used when running as root
	// (for tests of the fallback, or where CLONE_NEWPID is refused).
	NoPIDNamespace bool
	StartTimeout   time.Duration
	StopTimeout    time.Duration
	Logger         *slog.Logger
}

// Supervisor runs one php-fpm master.
type Supervisor struct {
	cfg      Config
	bin      string
	conf     fpmConf
	log      *slog.Logger
	useNS    bool
	deathSig syscall.Signal

	restarts atomic.Int64
	ready    atomic.Bool

	mu      sync.Mutex
	started bool
	proc    *os.Process // current master, nil between runs
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{} // closed when the run goroutine ends
}

// New validates cfg, resolves the binary and the pool user.
func New(cfg Config) (*Supervisor, error) {
	bin, err := Find(cfg.Binary)
	if err != nil {
		return nil, err
	}
	if cfg.RuntimeDir == "" {
		return nil, errors.New("phpfpm: RuntimeDir is required")
	}
	dir, err := filepath.Abs(cfg.RuntimeDir)
	if err != nil {
		return nil, fmt.Errorf("phpfpm: runtime dir: %w", err)
	}
	if strings.ContainsAny(dir, "[]\"$\\\n\r\x00;") {
		return nil, fmt.Errorf("phpfpm: runtime dir %q has characters php-fpm's config cannot hold", dir)
	}
	if n := len(filepath.Join(dir, socketName)); n > maxSocketPath {
		return nil, fmt.Errorf("phpfpm: socket path in %q is %d bytes, unix sockets allow %d", dir, n, maxSocketPath)
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = DefaultStartTimeout
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = DefaultStopTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	for k, v := range cfg.INI {
		if !validKey(k) || !validValue(v) {
			return nil, fmt.Errorf("phpfpm: invalid ini override %q = %q", k, v)
		}
	}
	for k, v := range cfg.Defines {
		if !validKey(k) || !validValue(v) {
			return nil, fmt.Errorf("phpfpm: invalid define %q = %q", k, v)
		}
	}
	for k, v := range cfg.Env {
		// php-fpm reads env[X] = $Y as "copy Y from the master's environment".
		if !validKey(k) || !validValue(v) || strings.HasPrefix(v, "$") {
			return nil, fmt.Errorf("phpfpm: invalid env entry %q = %q", k, v)
		}
	}
	if !validValue(cfg.MemoryLimit) {
		return nil, fmt.Errorf("phpfpm: invalid memory limit %q", cfg.MemoryLimit)
	}
	s := &Supervisor{
		cfg: cfg,
		bin: bin,
		log: cfg.Logger.With("component", "phpfpm"),
		conf: fpmConf{
			Dir: dir, Workers: cfg.Workers, MemoryLimit: cfg.MemoryLimit,
			MaxExec: cfg.MaxExecutionTime, StopTimeout: cfg.StopTimeout, INI: cfg.INI, Env: cfg.Env,
		},
	}
	if os.Geteuid() == 0 {
		if err := s.resolveUsers(); err != nil {
			return nil, err
		}
		s.useNS = !cfg.NoPIDNamespace
	}
	// In a PID namespace the kernel kills every worker when the master
	// dies, so the master may be SIGKILLed; without one, SIGTERM lets the
	// master stop its workers itself.
	s.deathSig = syscall.SIGTERM
	if s.useNS {
		s.deathSig = syscall.SIGKILL
	}
	return s, nil
}

func (s *Supervisor) resolveUsers() error {
	name := s.cfg.User
	if name == "" {
		name = "www-data"
		if _, err := user.Lookup(name); err != nil {
			name = "nobody"
		}
	}
	u, err := user.Lookup(name)
	if err != nil {
		return fmt.Errorf("phpfpm: pool user: %w", err)
	}
	if u.Uid == "0" {
		return fmt.Errorf("phpfpm: refusing to run PHP as root (user %q)", name)
	}
	group := s.cfg.Group
	if group == "" {
		g, err := user.LookupGroupId(u.Gid)
		if err != nil {
			return fmt.Errorf("phpfpm: group of %q: %w", name, err)
		}
		group = g.Name
	} else if _, err := user.LookupGroup(group); err != nil {
		return fmt.Errorf("phpfpm: pool group: %w", err)
	}
	me, err := user.Current()
	if err != nil {
		return fmt.Errorf("phpfpm: current user: %w", err)
	}
	mg, err := user.LookupGroupId(me.Gid)
	if err != nil {
		return fmt.Errorf("phpfpm: current group: %w", err)
	}
	s.conf.User, s.conf.Group = name, group
	s.conf.Owner, s.conf.OGroup = me.Username, mg.Name
	return nil
}

// Find resolves the php-fpm binary: a path, a name in PATH, or "" for
// php-fpm8.2, php-fpm, then the newest php-fpm8.* in PATH and /usr/sbin.
func Find(binary string) (string, error) {
	if binary != "" {
		p, err := exec.LookPath(binary)
		if err != nil {
			return "", fmt.Errorf("phpfpm: binary %q: %w", binary, err)
		}
		return p, nil
	}
	dirs := append(filepath.SplitList(os.Getenv("PATH")), "/usr/sbin", "/usr/local/sbin")
	for _, name := range []string{"php-fpm8.2", "php-fpm"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
		for _, d := range dirs {
			if p := filepath.Join(d, name); isExecutable(p) {
				return p, nil
			}
		}
	}
	var found []string
	for _, d := range dirs {
		m, _ := filepath.Glob(filepath.Join(d, "php-fpm8.*"))
		for _, p := range m {
			if isExecutable(p) {
				found = append(found, p)
			}
		}
	}
	if len(found) > 0 {
		sort.Slice(found, func(i, j int) bool { return versionLess(found[j], found[i]) })
		return found[0], nil
	}
	return "", fmt.Errorf("phpfpm: %w (looked for php-fpm8.2, php-fpm, php-fpm8.* in PATH and /usr/sbin)", ErrNotFound)
}

// versionLess orders php-fpm8.9 before php-fpm8.10.
func versionLess(a, b string) bool {
	va, vb := strings.TrimPrefix(filepath.Base(a), "php-fpm8."), strings.TrimPrefix(filepath.Base(b), "php-fpm8.")
	if len(va) != len(vb) {
		return len(va) < len(vb)
	}
	return va < vb
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// Socket is the unix socket php-fpm listens on.
func (s *Supervisor) Socket() string { return s.conf.socket() }

// Restarts counts restarts after unexpected exits.
func (s *Supervisor) Restarts() int64 { return s.restarts.Load() }

// Pid is the current master's pid (0 while it is down).
func (s *Supervisor) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return 0
	}
	return s.proc.Pid
}

// Ready reports whether php-fpm is running and its socket accepted a
// connection since it was (re)started. It does not dial on every call: with
// every worker pinned by a kept-alive fastcgi connection, a probe would sit
// in the listen backlog unaccepted, and probes would pile up until the
// backlog is full.
func (s *Supervisor) Ready() bool { return s.ready.Load() }

// ErrNotReady: php-fpm is starting or restarting.
var ErrNotReady = errors.New("php-fpm is not running yet")

// ReadyErr is Ready as an error (nil when ready), for health checks.
func (s *Supervisor) ReadyErr() error {
	if !s.Ready() {
		return ErrNotReady
	}
	return nil
}

// Start writes the config, starts php-fpm and waits until its socket
// accepts connections. ctx bounds only the start; php-fpm runs until Close.
func (s *Supervisor) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return errors.New("phpfpm: already started")
	}
	s.started = true
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.done = make(chan struct{})
	s.mu.Unlock()

	if err := s.prepare(); err != nil {
		s.cancel()
		close(s.done)
		return err
	}
	first := make(chan error, 1)
	go s.run(first)
	select {
	case err := <-first:
		if err != nil {
			<-s.done
			return err
		}
	case <-ctx.Done():
		s.Close()
		return fmt.Errorf("phpfpm: waiting for php-fpm on %s: %w\n%s", s.Socket(), ctx.Err(), s.tail())
	}
	s.log.Info("php-fpm started", "pid", s.Pid(), "socket", s.Socket(), "workers", s.cfg.Workers, "binary", s.bin, "pid_namespace", s.useNS)
	return nil
}

// prepare creates the runtime dir, clears what a crashed run left behind
// and writes the config.
func (s *Supervisor) prepare() error {
	dir := s.conf.Dir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("phpfpm: runtime dir: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("phpfpm: runtime dir: %w", err)
	}
	// A socket that still accepts belongs to a live php-fpm: another ephpm
	// uses this directory. Anything else is debris from a crash.
	if c, err := net.DialTimeout("unix", s.Socket(), 200*time.Millisecond); err == nil {
		c.Close()
		return fmt.Errorf("phpfpm: %s is in use by another php-fpm", s.Socket())
	}
	for _, name := range []string{socketName, pidName} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("phpfpm: remove stale %s: %w", name, err)
		}
	}
	if err := writeFile(s.conf.confPath(), []byte(s.conf.render()), 0o600); err != nil {
		return fmt.Errorf("phpfpm: write config: %w", err)
	}
	return nil
}

// run owns php-fpm. It keeps its OS thread for its whole life: the
// kernel sends Pdeathsig when the *thread* that forked the master exits,
// so that thread must outlive the master.
func (s *Supervisor) run(first chan<- error) {
	runtime.LockOSThread() // never unlocked; the thread exits with the goroutine
	defer close(s.done)
	backoff := DefaultMinBackoff
	attempt := 0
	for {
		proc, err := s.spawn()
		if err != nil && first != nil {
			first <- err
			return
		}
		started := time.Now()
		var state *os.ProcessState
		if err == nil {
			exited := make(chan struct{})
			go func() { state, err = proc.Wait(); close(exited) }()
			ready := s.watchReady(proc, exited)
			if first != nil {
				if ready {
					first <- nil
					first = nil
				} else {
					// The first start fails fast with php-fpm's own words
					// instead of entering the restart loop.
					proc.Kill()
				}
			}
			<-exited
			s.ready.Store(false)
			s.mu.Lock()
			s.proc = nil
			s.mu.Unlock()
			// Without a PID namespace the workers of a SIGKILLed master
			// live on (and keep the socket); they share its process group.
			syscall.Kill(-proc.Pid, syscall.SIGKILL)
			if first != nil {
				first <- fmt.Errorf("phpfpm: php-fpm did not start (%v):\n%s", exitString(state, err), s.tail())
				return
			}
		}
		if s.ctx.Err() != nil {
			return
		}
		if time.Since(started) > DefaultStableAfter {
			backoff, attempt = DefaultMinBackoff, 0
		}
		attempt++
		s.log.Warn("php-fpm exited unexpectedly; restarting",
			"exit", exitString(state, err), "attempt", attempt, "delay", backoff, "log_tail", s.tail())
		t := time.NewTimer(backoff)
		select {
		case <-s.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, DefaultMaxBackoff)
		s.restarts.Add(1)
	}
}

func (s *Supervisor) spawn() (*os.Process, error) {
	dir := s.conf.Dir
	for _, name := range []string{socketName, pidName} {
		os.Remove(filepath.Join(dir, name))
	}
	errf, err := os.OpenFile(filepath.Join(dir, stderrName), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("phpfpm: %w", err)
	}
	defer errf.Close()
	args := []string{"--nodaemonize", "--fpm-config", s.conf.confPath(),
		"-d", "opcache.enable=1", "-d", "cgi.fix_pathinfo=0"}
	for _, k := range slices.Sorted(maps.Keys(s.cfg.Defines)) {
		args = append(args, "-d", k+"="+s.cfg.Defines[k])
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = errf, errf // files, not pipes: no copy goroutine to outlive
	cmd.Env = masterEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: s.deathSig}
	if s.useNS {
		cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWPID
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil {
		return nil, fmt.Errorf("phpfpm: %w", s.ctx.Err())
	}
	err = cmd.Start()
	if err != nil && s.useNS && (errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EINVAL)) {
		// CLONE_NEWPID refused (e.g. a container without CAP_SYS_ADMIN):
		// fall back to process-group cleanup and a graceful death signal.
		s.log.Warn("PID namespace refused; php-fpm workers rely on process-group cleanup", "err", err)
		s.useNS, s.deathSig = false, syscall.SIGTERM
		cmd = exec.Command(s.bin, args...)
		cmd.Dir, cmd.Stdout, cmd.Stderr, cmd.Env = dir, errf, errf, masterEnv()
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: s.deathSig}
		err = cmd.Start()
	}
	if err != nil {
		return nil, fmt.Errorf("phpfpm: start %s: %w", s.bin, err)
	}
	s.proc = cmd.Process
	return cmd.Process, nil
}

// masterEnv is the php-fpm master's environment: only what it needs, as
// ephpm's own environment may hold secrets.
func masterEnv() []string {
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	for _, k := range []string{"TZ", "LANG", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// watchReady polls the socket after a (re)start until it accepts, then
// marks the supervisor ready. A master that does not listen within
// StartTimeout is killed so that the run loop restarts it.
func (s *Supervisor) watchReady(proc *os.Process, exited <-chan struct{}) bool {
	deadline := time.NewTimer(s.cfg.StartTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if c, err := net.DialTimeout("unix", s.Socket(), 200*time.Millisecond); err == nil {
			c.Close()
			s.ready.Store(true)
			return true
		}
		select {
		case <-exited:
			return false
		case <-s.ctx.Done():
			return false
		case <-deadline.C:
			s.log.Error("php-fpm is not accepting connections; killing it", "pid", proc.Pid, "timeout", s.cfg.StartTimeout, "log_tail", s.tail())
			proc.Kill()
			return false
		case <-tick.C:
		}
	}
}

func exitString(state *os.ProcessState, err error) string {
	if err != nil {
		return err.Error()
	}
	if state != nil {
		return state.String()
	}
	return "unknown"
}

// tail returns the end of php-fpm's stderr and error log, for errors.
func (s *Supervisor) tail() string {
	var b strings.Builder
	for _, name := range []string{stderrName, logName} {
		data := readTail(filepath.Join(s.conf.Dir, name), 2048)
		if len(bytes.TrimSpace(data)) > 0 {
			fmt.Fprintf(&b, "%s:\n%s\n", name, bytes.TrimSpace(data))
		}
	}
	return b.String()
}

func readTail(path string, n int64) []byte {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > n {
		f.Seek(-n, io.SeekEnd)
	}
	data, _ := io.ReadAll(io.LimitReader(f, n))
	return data
}

// Close stops php-fpm gracefully (SIGQUIT lets running requests finish),
// escalating to SIGTERM and SIGKILL, and waits for the supervisor
// goroutine. It is safe to call more than once.
func (s *Supervisor) Close() error {
	s.mu.Lock()
	if !s.started || s.cancel == nil {
		s.mu.Unlock()
		return nil
	}
	s.cancel()
	proc := s.proc
	s.mu.Unlock()

	if proc != nil {
		proc.Signal(syscall.SIGQUIT)
		steps := []struct {
			after time.Duration
			sig   syscall.Signal
		}{{s.cfg.StopTimeout, syscall.SIGTERM}, {min(2*time.Second, s.cfg.StopTimeout), syscall.SIGKILL}}
		for _, st := range steps {
			t := time.NewTimer(st.after)
			select {
			case <-s.done:
				t.Stop()
				return nil
			case <-t.C:
			}
			s.log.Warn("php-fpm did not stop; escalating", "signal", st.sig.String())
			proc.Signal(st.sig)
		}
	}
	<-s.done
	return nil
}
