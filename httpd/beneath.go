package httpd

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// openBeneathSlow is openBeneath for kernels without openat2: resolve
// every symlink, then check the result is still inside root.
func openBeneathSlow(root, rel string) (*os.File, error) {
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, err
	}
	p, err := filepath.EvalSymlinks(filepath.Join(root, rel))
	if err != nil {
		return nil, err
	}
	if p != realRoot && !strings.HasPrefix(p, realRoot+string(filepath.Separator)) {
		return nil, &os.PathError{Op: "open", Path: filepath.Join(root, rel), Err: fmt.Errorf("resolves outside the document root: %w", syscall.EXDEV)}
	}
	return os.Open(p)
}
