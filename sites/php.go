package sites

import (
	"fmt"
	"os"
	osuser "os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ephpm/ephpm/config"
	"github.com/ephpm/ephpm/httpd"
	"github.com/ephpm/ephpm/phpfpm"
)

var _ httpd.PHP = (*phpfpm.SitePHP)(nil)

// SharedPHP is Config.PHP for a node whose sites share its one php-fpm
// pool, php. A site.toml asking for what only a pool of its own can
// give (disable_functions, run_as) makes the site fail to load.
func SharedPHP(php httpd.PHP) func(*Site) (httpd.PHP, error) {
	return func(s *Site) (httpd.PHP, error) {
		if s.Conf.DisableFunctions != nil || s.Conf.RunAs != "" {
			return nil, fmt.Errorf("site %s: [php] disable_functions and run_as need a pool of its own ([php] isolation = \"pool\")", s.Name)
		}
		return php, nil
	}
}

// PoolPHP is Config.PHP for [php] isolation = "pool": each site runs in
// a php-fpm of its own from pools, started on its first request and
// stopped when idle, set up by PoolSpec.
func PoolPHP(pools *phpfpm.Pools, global *config.Config) func(*Site) (httpd.PHP, error) {
	return func(s *Site) (httpd.PHP, error) {
		return pools.Site(s.Name, func() (phpfpm.Config, error) { return PoolSpec(global, s) }), nil
	}
}

// PoolSpec is the php-fpm of a site that has a pool of its own: the
// node's binary, the site's limits and ini_overrides, and the isolation
// ephpm sets (open_basedir, session and temp dirs in the site's state
// dir, disable_functions). With run_as, the site's state dirs are given
// to that user first (as root).
func PoolSpec(global *config.Config, s *Site) (phpfpm.Config, error) {
	disable := global.PHP.DisableFunctions
	if s.Conf.DisableFunctions != nil {
		disable = s.Conf.DisableFunctions
	}
	ini := map[string]string{
		"post_max_size":       global.Server.Request.MaxBodySize.PHPString(),
		"upload_max_filesize": global.Server.Request.MaxBodySize.PHPString(),
		"open_basedir":        s.Dir + "/:" + s.StateDir + "/",
		"session.save_path":   filepath.Join(s.StateDir, "sessions"),
		"upload_tmp_dir":      filepath.Join(s.StateDir, "tmp"),
		"sys_temp_dir":        filepath.Join(s.StateDir, "tmp"),
	}
	if len(disable) > 0 {
		ini["disable_functions"] = strings.Join(disable, ",")
	}
	for k, v := range s.Conf.IniOverrides {
		ini[k] = v
	}
	user := global.PHP.User
	if s.Conf.RunAs != "" {
		user = s.Conf.RunAs
		// The site's own user owns its tmp and session dirs.
		if err := chownStateDir(s.StateDir, user); err != nil {
			return phpfpm.Config{}, fmt.Errorf("site %s: run_as %q: %w", s.Name, user, err)
		}
	}
	return phpfpm.Config{
		Binary:           global.PHP.FPMBinary,
		User:             user,
		MemoryLimit:      s.Conf.MemoryLimit.PHPString(),
		MaxExecutionTime: s.Conf.MaxExecutionTime.D(),
		INI:              ini,
	}, nil
}

// chownStateDir gives the site's state directories (not what is in
// them) to the named user (as root), without following a symlink the
// site's PHP may have put in their place.
func chownStateDir(dir, name string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := osuser.Lookup(name)
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	root, site := filepath.Split(filepath.Clean(dir))
	for _, rel := range []string{site, site + "/tmp", site + "/sessions"} {
		if _, err := MkdirBeneath(root, rel, 0o700, uid, gid); err != nil {
			return err
		}
	}
	return nil
}
