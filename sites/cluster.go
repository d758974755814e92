package sites

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ephpm/ephpm/config"
	"golang.org/x/sys/unix"
)

// What a cluster node does to its sites_dir when the cluster's directory
// creates or removes a site (package placement calls these).

// ErrNoFiles: a site's directory holds nothing but its site.toml — the
// cluster created it on this node and its files have not arrived.
var ErrNoFiles = errors.New("this site's files are not on this node yet")

// removedDir collects what Remove moves aside, in sites_dir and in the
// database dir; a dot name is never a site.
const removedDir = ".ephpm-removed"

// DefaultDBPath is where a site's database lives when its site.toml
// does not say ([db.sqlite] path).
func (r *Registry) DefaultDBPath(name string) string { return filepath.Join(r.cfg.DBDir, name+".db") }

// IsSite reports whether name has a directory in sites_dir.
func (r *Registry) IsSite(name string) bool { return r.isSiteDir(name) }

// SiteFile returns a site's site.toml as the node believes it (only a
// file the operator wrote: ReadSiteFile).
func (r *Registry) SiteFile(name string) ([]byte, error) {
	if !r.isSiteDir(name) {
		return nil, ErrNoSite
	}
	return ReadSiteFile(filepath.Join(r.cfg.Dir, name))
}

// Create makes a site the cluster knows: its directory (if missing) and
// its site.toml (if missing: an operator's file is never replaced),
// written by this process so that the node believes it. The files
// themselves arrive by other means; until then the site answers 503.
func (r *Registry) Create(name string, conf []byte) error {
	if n, err := config.NormalizeHost(name); err != nil || n != name {
		return fmt.Errorf("site %q: not a valid host name", name)
	}
	dir := filepath.Join(r.cfg.Dir, name)
	if _, err := os.Lstat(filepath.Join(dir, SiteFile)); err == nil {
		return nil // there already: an operator's file is never replaced
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("site %s: %w", name, err)
	}
	if r.cfg.PHPUser > 0 {
		// Like a site an operator hands to its tenant: PHP writes its
		// own directory (uploads, plugins); site.toml stays root's.
		if err := os.Lchown(dir, r.cfg.PHPUser, r.cfg.PHPGroup); err != nil {
			return fmt.Errorf("site %s: %w", name, err)
		}
	}
	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("site %s: %w", name, err)
	}
	defer unix.Close(fd)
	// Beneath the directory's fd, never following a link the tenant
	// could have put there; O_EXCL keeps an existing site.toml.
	tmp := fmt.Sprintf(".site.toml.%d", time.Now().UnixNano())
	f, err := unix.Openat(fd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return fmt.Errorf("site %s: site.toml: %w", name, err)
	}
	file := os.NewFile(uintptr(f), tmp)
	_, werr := file.Write(conf)
	if werr == nil {
		werr = file.Sync()
	}
	if cerr := file.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		// linkat fails with EEXIST rather than replace: the operator's
		// site.toml wins.
		werr = unix.Linkat(fd, tmp, fd, SiteFile, 0)
		if errors.Is(werr, unix.EEXIST) {
			werr = nil
		}
	}
	if err := unix.Unlinkat(fd, tmp, 0); werr == nil && err != nil {
		werr = err
	}
	if werr == nil {
		werr = unix.Fsync(fd)
	}
	if werr != nil {
		return fmt.Errorf("site %s: site.toml: %w", name, werr)
	}
	r.log.Info("site created from the cluster directory", "site", name)
	return nil
}

// Remove takes a site off this node: its directory and its database
// files move aside (under .ephpm-removed, never deleted here: removal
// is the one operation an operator may regret).
func (r *Registry) Remove(name string) error {
	if n, err := config.NormalizeHost(name); err != nil || n != name {
		return fmt.Errorf("site %q: not a valid host name", name)
	}
	stamp := name + "." + strconv.FormatInt(time.Now().Unix(), 10)
	var errs []error
	moveAside := func(from, trash string) {
		if _, err := os.Lstat(from); errors.Is(err, os.ErrNotExist) {
			return
		}
		if err := os.MkdirAll(trash, 0o700); err != nil {
			errs = append(errs, err)
			return
		}
		if err := os.Rename(from, filepath.Join(trash, filepath.Base(from)+"."+stamp)); err != nil {
			errs = append(errs, err)
		}
	}
	moveAside(filepath.Join(r.cfg.Dir, name), filepath.Join(r.cfg.Dir, removedDir))
	db := filepath.Join(r.cfg.DBDir, name+".db")
	for _, suffix := range []string{"", "-wal", "-shm", "-replog", "-replica", "-replica-tail"} {
		moveAside(db+suffix, filepath.Join(r.cfg.DBDir, removedDir))
	}
	// Copies kept when the site's history diverged (replication's
	// quarantine) go with it: the operator may still want them.
	quarantined, err := filepath.Glob(globEscape(db) + "-diverged-*")
	if err != nil {
		errs = append(errs, err)
	}
	for _, q := range quarantined {
		moveAside(q, filepath.Join(r.cfg.DBDir, removedDir))
	}
	moveAside(filepath.Join(r.cfg.DBDir, name), filepath.Join(r.cfg.DBDir, removedDir))
	r.mu.Lock()
	delete(r.sites, name)
	r.mu.Unlock()
	if len(errs) > 0 {
		return fmt.Errorf("site %s: remove: %w", name, errors.Join(errs...))
	}
	r.log.Info("site removed from this node (moved aside)", "site", name)
	return nil
}

// globEscape quotes the glob metacharacters of a path.
func globEscape(p string) string {
	return strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`).Replace(p)
}

// onlySiteFile reports whether dir holds nothing but site.toml.
func onlySiteFile(dir string) bool {
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	names, _ := f.Readdirnames(3)
	return len(names) == 1 && names[0] == SiteFile
}
