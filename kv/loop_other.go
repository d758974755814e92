//go:build !linux

package kv

import (
	"errors"
	"net"
)

// loopConn is empty where there is no event loop: every connection gets a
// goroutine.
type loopConn struct{}

type loop struct{}

func (l *loop) wake() {}

func (l *loop) closeFDs() {}

func (s *Server) startLoops() error { return errors.New("no event loop on this platform") }

func (s *Server) handOff(nc net.Conn) error { return errors.New("no event loop on this platform") }

func (c *conn) loopLoggedIn() {}
