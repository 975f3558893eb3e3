package pgtest

import (
	"errors"
	"syscall"
)

// setupAttr makes a setup command receive SIGTERM when the test binary dies.
// runuser passes SIGTERM on to its child; initdb then removes its data
// directory.
func setupAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}

// watchdogAttr puts the watchdog in its own process group.
func watchdogAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// processExists reports whether process pid exists. EPERM means it exists
// under another user.
func processExists(pid int) bool {
	return !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
