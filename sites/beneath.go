package sites

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Paths of a site are resolved, not compared: each component is opened
// relative to the one before with O_NOFOLLOW, so no symlink — planted by
// a tenant before or after a check — can lead outside the directory a
// path must stay in. This is what openat2(RESOLVE_BENEATH |
// RESOLVE_NO_SYMLINKS) does in one call, written per component because
// directories are also created and chowned on the way.

// ErrOutside means a site path would leave the directory it must stay in
// (a "..", or a symlink on the way).
var ErrOutside = errors.New("path leaves its directory or crosses a symlink")

// components splits rel into names, refusing "..", "." and empty ones.
func components(rel string) ([]string, error) {
	rel = strings.Trim(rel, "/")
	if rel == "" {
		return nil, nil
	}
	parts := strings.Split(rel, "/")
	for _, p := range parts {
		if p == "" || p == "." || p == ".." {
			return nil, fmt.Errorf("%q: %w", rel, ErrOutside)
		}
	}
	return parts, nil
}

// openDirBeneath opens root/rel as a directory without following any
// symlink after root; with create it makes the missing directories
// (perm) and gives each it made or met to uid:gid (uid < 0: leave it).
// The caller closes the returned fd.
func openDirBeneath(root, rel string, create bool, perm uint32, uid, gid int) (int, error) {
	parts, err := components(rel)
	if err != nil {
		return -1, err
	}
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: root, Err: err}
	}
	for i, p := range parts {
		if create {
			if err := unix.Mkdirat(fd, p, perm); err != nil && !errors.Is(err, unix.EEXIST) {
				unix.Close(fd)
				return -1, &os.PathError{Op: "mkdir", Path: filepath.Join(root, filepath.Join(parts[:i+1]...)), Err: err}
			}
		}
		next, err := unix.Openat(fd, p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		where := filepath.Join(root, filepath.Join(parts[:i+1]...))
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return -1, &os.PathError{Op: "open", Path: where, Err: ErrOutside}
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: where, Err: err}
		}
		fd = next
		if create && uid >= 0 {
			// On the fd: a rename between mkdir and here cannot redirect it.
			if err := unix.Fchown(fd, uid, gid); err != nil {
				unix.Close(fd)
				return -1, &os.PathError{Op: "chown", Path: where, Err: err}
			}
			if err := unix.Fchmod(fd, perm); err != nil {
				unix.Close(fd)
				return -1, &os.PathError{Op: "chmod", Path: where, Err: err}
			}
		}
	}
	return fd, nil
}

// MkdirBeneath makes root/rel (and its parents below root) without
// following symlinks, each directory perm and owned by uid:gid (uid < 0:
// unchanged). It returns the path.
func MkdirBeneath(root, rel string, perm os.FileMode, uid, gid int) (string, error) {
	fd, err := openDirBeneath(root, rel, true, uint32(perm.Perm()), uid, gid)
	if err != nil {
		return "", err
	}
	unix.Close(fd)
	return filepath.Join(root, rel), nil
}

// ResolveFileBeneath checks that root/rel reaches a regular file or
// nothing through directories only, no symlink on the way or at the end,
// and returns the path. Used for a site's database, which SQLite then
// opens by name (with its -wal and -shm beside it): the directory it is
// in must not be one a tenant can write, which the caller guarantees.
func ResolveFileBeneath(root, rel string) (string, error) {
	dir, base := filepath.Split(filepath.Clean("/" + rel))
	if _, err := components(rel); err != nil {
		return "", err
	}
	fd, err := openDirBeneath(root, dir, false, 0, -1, -1)
	if errors.Is(err, os.ErrNotExist) {
		return filepath.Join(root, rel), nil // made on first use, below root
	}
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	err = unix.Fstatat(fd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case errors.Is(err, unix.ENOENT):
	case err != nil:
		return "", &os.PathError{Op: "stat", Path: filepath.Join(root, rel), Err: err}
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return "", &os.PathError{Op: "open", Path: filepath.Join(root, rel), Err: fmt.Errorf("not a regular file: %w", ErrOutside)}
	}
	return filepath.Join(root, rel), nil
}

// maxSiteFile bounds a site.toml.
const maxSiteFile = 1 << 20

// ErrUntrustedSiteFile means a site.toml could have been written by a
// tenant: ephpm refuses it, as sshd's StrictModes refuses such files.
var ErrUntrustedSiteFile = errors.New("site.toml is not trusted")

// ReadSiteFile reads dir/site.toml if it exists (nil, nil if not) and
// only if the operator wrote it: a regular file (not a symlink), with one
// link, owned by root or by the user ephpm runs as, writable by nobody
// else. Everything else in a site's directory is the tenant's — its PHP
// can write there — and site.toml grants power (replication peers,
// database path, aliases, PHP settings), so a file PHP could have
// written is refused, not partly believed.
func ReadSiteFile(dir string) ([]byte, error) {
	p := filepath.Join(dir, SiteFile)
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if errors.Is(err, unix.ELOOP) {
		return nil, fmt.Errorf("%s is a symbolic link: %w", p, ErrUntrustedSiteFile)
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &os.PathError{Op: "stat", Path: p, Err: err}
	}
	euid := uint32(os.Geteuid())
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return nil, fmt.Errorf("%s is not a regular file: %w", p, ErrUntrustedSiteFile)
	case st.Nlink != 1:
		return nil, fmt.Errorf("%s has %d hard links: %w", p, st.Nlink, ErrUntrustedSiteFile)
	case st.Uid != 0 && st.Uid != euid:
		return nil, fmt.Errorf("%s is owned by uid %d, not root or ephpm's uid %d (a file PHP could have written): %w", p, st.Uid, euid, ErrUntrustedSiteFile)
	case st.Mode&0o022 != 0:
		return nil, fmt.Errorf("%s is writable by group or others (mode %04o): %w", p, st.Mode&0o7777, ErrUntrustedSiteFile)
	case st.Size > maxSiteFile:
		return nil, fmt.Errorf("%s is larger than %d bytes", p, maxSiteFile)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSiteFile+1))
	if err != nil {
		return nil, &os.PathError{Op: "read", Path: p, Err: err}
	}
	if data == nil {
		data = []byte{}
	}
	return data, nil
}
