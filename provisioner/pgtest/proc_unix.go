//go:build unix && !linux

package pgtest

import (
	"errors"
	"syscall"
)

// setupAttr returns nil: without Pdeathsig, a setup step running when the
// test binary dies finishes on its own, and the watchdog's retries clean up
// after it.
func setupAttr() *syscall.SysProcAttr { return nil }

// watchdogAttr puts the watchdog in its own process group.
func watchdogAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// processExists reports whether process pid exists. EPERM means it exists
// under another user.
func processExists(pid int) bool {
	return !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
