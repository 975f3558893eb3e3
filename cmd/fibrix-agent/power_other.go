//go:build !linux

package main

import "errors"

func powerOff() error { return errors.New("power off is only supported on Linux") }

func reboot() error { return errors.New("reboot is only supported on Linux") }
