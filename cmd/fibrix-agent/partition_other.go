//go:build !linux

package main

import (
	"context"
	"errors"
)

type kernelPartitions struct {
	sysBlock string
	devDir   string
}

var errPartitions = errors.New("partitions are only supported on Linux")

func (kernelPartitions) Rescan(context.Context, string) ([]string, error) { return nil, errPartitions }

func (kernelPartitions) Mount(string, bool) (string, func() error, error) {
	return "", nil, errPartitions
}
