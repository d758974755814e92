package phpfpm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ephpm/ephpm/fastcgi"
	"github.com/ephpm/ephpm/phpfpm"
)

// helperEnv makes the test binary act as a tiny ephpm: start a supervisor
// on the given runtime dir, print the master pid, and wait to be killed.
const helperEnv = "EPHPM_PHPFPM_HELPER"

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperEnv); dir != "" {
		runHelper(dir)
		return
	}
	os.Exit(m.Run())
}

func runHelper(dir string) {
	s, err := phpfpm.New(phpfpm.Config{RuntimeDir: dir, Workers: 2, NoPIDNamespace: os.Getenv(helperEnv+"_NONS") != ""})
	if err == nil {
		err = s.Start(context.Background())
	}
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("ready", s.Pid())
	select {} // until SIGKILL
}

func requireFPM(t *testing.T) {
	t.Helper()
	if _, err := phpfpm.Find(""); err != nil {
		if os.Getenv("EPHPM_REQUIRE_ALL") != "" {
			t.Fatalf("php-fpm required: %v", err)
		}
		t.Skip(err)
	}
}

// runtimeDir is short: the socket path must fit in 108 bytes.
func runtimeDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "phpfpm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "run")
}

// docroot holds PHP scripts readable by the pool user (www-data when root).
func docroot(t *testing.T, scripts map[string]string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "phpdoc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, src := range scripts {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const infoPHP = `<?php
header('Content-Type: application/json');
echo json_encode([
  'memory_limit' => ini_get('memory_limit'),
  'upload_max_filesize' => ini_get('upload_max_filesize'),
  'display_errors' => ini_get('display_errors'),
  'error_reporting' => ini_get('error_reporting'),
  'session_save_path' => ini_get('session.save_path'),
  'max_execution_time' => ini_get('max_execution_time'),
  'fix_pathinfo' => ini_get('cgi.fix_pathinfo'),
  'ini_set' => ini_set('memory_limit', '1G') === false ? 'refused' : 'allowed',
  'env' => getenv('EPHPM_TEST'),
  'weird' => getenv('WEIRD'),
  'path' => getenv('PATH'),
  'user' => function_exists('posix_geteuid') ? posix_getpwuid(posix_geteuid())['name'] : '',
  'pid' => getmypid(),
]);
`

// scriptParams are the CGI variables of a plain GET of root/script.
func scriptParams(root, script string) []fastcgi.Param {
	return []fastcgi.Param{
		{Name: "REQUEST_METHOD", Value: "GET"},
		{Name: "SCRIPT_FILENAME", Value: filepath.Join(root, script)},
		{Name: "SCRIPT_NAME", Value: "/" + script},
		{Name: "SERVER_PROTOCOL", Value: "HTTP/1.1"},
	}
}

// get runs a script through the fastcgi client and decodes its JSON.
func get(t *testing.T, sock, root, script string) map[string]any {
	t.Helper()
	c := fastcgi.NewClient(fastcgi.Config{Address: sock, MaxConns: 1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.Do(ctx, scriptParams(root, script), nil)
	if err != nil {
		t.Fatalf("request %s: %v", script, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("status %d body %q stderr %q: %v", resp.Status, body, resp.Stderr(), err)
	}
	return m
}

type proc struct {
	pid, ppid, pgid int
	state           byte
	cmdline         string
}

// procs lists live (non-zombie) processes.
func procs(t *testing.T) map[int]proc {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]proc{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// "pid (comm) state ppid pgrp ..."; comm may hold spaces.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		pgid, _ := strconv.Atoi(f[2])
		cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		out[pid] = proc{pid, ppid, pgid, f[0][0], string(bytes.ReplaceAll(cmd, []byte{0}, []byte{' '}))}
	}
	return out
}

// fpmProcs returns the live php-fpm processes that belong to dir: the
// master (its config path) and the workers (pool named after dir).
func fpmProcs(t *testing.T, dir string) []proc {
	var out []proc
	for _, p := range procs(t) {
		if strings.Contains(p.cmdline, "php-fpm") && strings.Contains(p.cmdline, dir) {
			out = append(out, p)
		}
	}
	return out
}

// waitGone polls until none of the pids is alive and, if dir is not "",
// no php-fpm process of dir remains.
func waitGone(t *testing.T, dir string, pids []int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ps := procs(t)
		var left []string
		for _, pid := range pids {
			if p, ok := ps[pid]; ok {
				left = append(left, fmt.Sprintf("%d %q", pid, p.cmdline))
			}
		}
		if dir != "" {
			for _, p := range fpmProcs(t, dir) {
				left = append(left, fmt.Sprintf("%d %q", p.pid, p.cmdline))
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("php-fpm processes still alive after %v: %v", within, left)
		}
		time.Sleep(20 * time.Millisecond) // polling /proc, bounded by deadline
	}
}

func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond) // polling, bounded by deadline
	}
}

func pidsOf(ps []proc) []int {
	var out []int
	for _, p := range ps {
		out = append(out, p.pid)
	}
	return out
}

// waitWorkers polls until dir's master and its n workers are up (a fresh
// child shows the master's title until it renames itself).
func waitWorkers(t *testing.T, dir string, n int) []proc {
	t.Helper()
	var ps []proc
	waitUntil(t, 5*time.Second, fmt.Sprintf("%d workers", n), func() bool {
		ps = fpmProcs(t, dir)
		workers := 0
		for _, p := range ps {
			if strings.Contains(p.cmdline, "pool ephpm") {
				workers++
			}
		}
		return len(ps) == n+1 && workers == n
	})
	return ps
}
