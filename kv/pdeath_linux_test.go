package kv_test

import (
	"os/exec"
	"syscall"
)

// dieWithTest makes a helper process (redis-server) die with the test
// binary, so a crashed test leaves no server behind.
func dieWithTest(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
