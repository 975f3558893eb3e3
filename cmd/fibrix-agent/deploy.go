package main

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/fibrixcloud/fibrix/provisioner/inventory"
)

// deploy streams the plan's image to its disk while hashing the bytes as
// served; a checksum mismatch is an error (the disk then holds a bad image
// and the machine must not boot from it). A good image then gets the
// cloud-init seed on its root filesystem.
func (a *agent) deploy(ctx context.Context, plan inventory.DeployPlan) (inventory.DeployResult, error) {
	res := inventory.DeployResult{Disk: inventoryName(plan.Disk)}
	var body io.ReadCloser
	err := a.retry(ctx, "image download", func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, plan.ImageURL, nil)
		if err != nil {
			return permanent(err)
		}
		resp, err := a.stream.Do(req)
		if err != nil {
			return err
		}
		if err := statusError(resp); err != nil {
			resp.Body.Close()
			return err
		}
		body = resp.Body
		return nil
	})
	if err != nil {
		return res, err
	}
	defer body.Close()

	dev := a.devPath(plan.Disk)
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err != nil {
		return res, fmt.Errorf("open disk: %w", err)
	}
	defer f.Close()

	start := time.Now()
	h := sha256.New()
	served := bufio.NewReaderSize(io.TeeReader(body, h), 1<<20)
	var src io.Reader = served
	if magic, _ := served.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(served)
		if err != nil {
			return res, fmt.Errorf("image: %w", err)
		}
		zr.Multistream(false)
		src = zr
	}
	n, err := io.CopyBuffer(f, src, make([]byte, 4<<20))
	res.BytesWritten = n
	if err != nil {
		return res, fmt.Errorf("write image to %s after %d bytes: %w", dev, n, err)
	}
	// Hash whatever follows the compressed stream too: the sum is over the file.
	if _, err := io.Copy(io.Discard, served); err != nil {
		return res, fmt.Errorf("read image: %w", err)
	}
	if err := f.Sync(); err != nil {
		return res, fmt.Errorf("sync %s: %w", dev, err)
	}
	res.SHA256 = hex.EncodeToString(h.Sum(nil))
	if res.SHA256 != plan.SHA256 {
		return res, errors.New("image checksum mismatch: got sha256 " + res.SHA256 + ", want " + plan.SHA256)
	}
	a.log.Info("image written", "disk", dev, "bytes", n, "took", time.Since(start).Round(time.Millisecond))
	if err := f.Close(); err != nil {
		return res, fmt.Errorf("close %s: %w", dev, err)
	}
	res.SeedPartition, res.SSHHostKey, err = a.seed(ctx, plan, res.Disk)
	if err != nil {
		return res, err
	}
	return res, nil
}

func inventoryName(disk string) string {
	for i := len(disk) - 1; i >= 0; i-- {
		if disk[i] == '/' {
			return disk[i+1:]
		}
	}
	return disk
}
