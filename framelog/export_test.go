package framelog

// SetSyncDir replaces how the log syncs its directory after a rename (a
// test makes it fail); it returns the real one and what restores it.
func SetSyncDir(f func(dir string) error) (real func(string) error, restore func()) {
	old := syncDir
	syncDir = f
	return old, func() { syncDir = old }
}
