package phpfpm_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ephpm/ephpm/fastcgi"
	"github.com/ephpm/ephpm/phpfpm"
)

// poolRequest runs script through a site's runtime; the caller closes
// the body.
func poolRequest(t *testing.T, php *phpfpm.SitePHP, root, script string) *fastcgi.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := php.Do(ctx, scriptParams(root, script), nil)
	if err != nil {
		t.Fatalf("request %s: %v", script, err)
	}
	return resp
}

func TestPoolsStartOnceAndStopIdle(t *testing.T) {
	requireFPM(t)
	root := docroot(t, map[string]string{"info.php": infoPHP})
	dir := runtimeDir(t)
	pools, err := phpfpm.NewPools(phpfpm.PoolsConfig{RuntimeDir: dir, Idle: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer pools.Close()
	var specs atomic.Int32
	spec := func() (phpfpm.Config, error) {
		specs.Add(1)
		return phpfpm.Config{MemoryLimit: "80M"}, nil
	}
	a := pools.Site("a.test", spec)

	resp := poolRequest(t, a, root, "info.php")
	var got map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got["memory_limit"] != "80M" {
		t.Errorf("memory_limit %v: the Spec's settings are not the pool's", got["memory_limit"])
	}
	// Held past the idle time: an open response keeps its pool.
	time.Sleep(700 * time.Millisecond)
	if pools.Len() != 1 {
		t.Fatalf("%d pools while a response is open, want 1", pools.Len())
	}
	// A second runtime of the same site shares the running pool.
	resp2 := poolRequest(t, pools.Site("a.test", spec), root, "info.php")
	resp2.Body.Close()
	resp.Body.Close()
	if specs.Load() != 1 {
		t.Errorf("Spec called %d times for one start", specs.Load())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("runtime dirs %v, want one", ents)
	}
	waitUntil(t, 10*time.Second, "the idle pool to stop", func() bool { return pools.Len() == 0 })
	// Stopping it ends by removing its runtime dir.
	waitUntil(t, 10*time.Second, "the stopped pool's runtime dir to go", func() bool {
		_, err := os.Stat(filepath.Join(dir, ents[0].Name()))
		return os.IsNotExist(err)
	})
	// The next request starts it again, in a fresh dir.
	poolRequest(t, a, root, "info.php").Body.Close()
	if specs.Load() != 2 || pools.Len() != 1 {
		t.Errorf("after restart: %d Spec calls, %d pools; want 2 and 1", specs.Load(), pools.Len())
	}
}

func TestPoolsSpecErrorNotKept(t *testing.T) {
	requireFPM(t)
	root := docroot(t, map[string]string{"info.php": infoPHP})
	pools, err := phpfpm.NewPools(phpfpm.PoolsConfig{RuntimeDir: runtimeDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	bad := errors.New("run_as: no such user")
	fail := true
	php := pools.Site("b.test", func() (phpfpm.Config, error) {
		if fail {
			return phpfpm.Config{}, bad
		}
		return phpfpm.Config{}, nil
	})
	if _, err := php.Do(context.Background(), nil, nil); !errors.Is(err, bad) {
		t.Fatalf("Do with a failing Spec: %v", err)
	}
	if pools.Len() != 0 {
		t.Error("a failed start is kept")
	}
	fail = false
	poolRequest(t, php, root, "info.php").Body.Close()
	if err := pools.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if pools.Len() != 0 {
		t.Errorf("%d pools after Close", pools.Len())
	}
	if _, err := php.Do(context.Background(), nil, nil); err == nil {
		t.Error("Do after Close started a pool")
	}
}

func TestNewPoolsNeedsRuntimeDir(t *testing.T) {
	if _, err := phpfpm.NewPools(phpfpm.PoolsConfig{}); err == nil {
		t.Error("NewPools without RuntimeDir succeeded")
	}
}
