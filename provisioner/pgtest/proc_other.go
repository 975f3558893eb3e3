//go:build !unix

package pgtest

import "syscall"

// setupAttr returns nil: no parent-death signal on this platform.
func setupAttr() *syscall.SysProcAttr { return nil }

// watchdogAttr returns nil: no process groups on this platform.
func watchdogAttr() *syscall.SysProcAttr { return nil }

// processExists reports true: without a cheap check, never call a cluster
// stale by its owner.
func processExists(int) bool { return true }
