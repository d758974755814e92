//go:build linux

package mysqlwire

import "golang.org/x/sys/unix"

// peerClosed reports whether the other end of a connected socket closed
// (FIN: POLLRDHUP; unix sockets: POLLHUP) or reset it, without reading:
// data the client sent ahead stays for the next command. A MySQL client
// never half-closes while it waits for a result.
func peerClosed(fd uintptr) bool {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN | unix.POLLRDHUP}}
	n, err := unix.Poll(pfd, 0)
	if err != nil || n == 0 {
		return false
	}
	return pfd[0].Revents&(unix.POLLRDHUP|unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0
}
