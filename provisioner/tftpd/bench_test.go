package tftpd_test

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/fibrixcloud/fibrix/provisioner/tftpd"
)

// BenchmarkTransfer50MiB fetches 50 MiB at blksize 1468 with curl, from us
// and from tftpd-hpa side by side on the same box:
//
//	go test -run '^$' -bench Transfer50MiB -benchtime 5x ./provisioner/tftpd/
func BenchmarkTransfer50MiB(b *testing.B) {
	curl := need(b, "curl", "curl")
	const size = 50 << 20
	dir := b.TempDir()
	// tftpd-hpa chroots into the directory and drops to its own user.
	if err := os.Chmod(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	randomFile(b, filepath.Join(dir, "image"), size)
	randomFile(b, filepath.Join(dir, "ready"), 1)

	fetch := func(b *testing.B, port string) {
		b.Helper()
		b.SetBytes(size)
		b.ResetTimer()
		start := time.Now()
		for range b.N {
			out, err := exec.Command(curl, "-sS", "--tftp-blksize", "1468", "-o", os.DevNull,
				"-w", "%{size_download}", "tftp://127.0.0.1:"+port+"/image").CombinedOutput()
			if err != nil || string(out) != "52428800" {
				b.Fatalf("curl: %v %s", err, out)
			}
		}
		b.ReportMetric(float64(size)*float64(b.N)/(1<<20)/time.Since(start).Seconds(), "MiB/s")
	}

	b.Run("fibrix", func(b *testing.B) {
		s := start(b, tftpd.Config{Root: dir, BlockSize: 1468})
		fetch(b, s.port)
	})
	b.Run("tftpd-hpa", func(b *testing.B) {
		bin := need(b, "in.tftpd", "tftpd-hpa")
		port := freeUDPPort(b)
		cmd := exec.Command(bin, "-L", "-s", dir, "-a", "127.0.0.1:"+port)
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
		// Ready when it answers.
		deadline := time.Now().Add(5 * time.Second)
		for exec.Command(curl, "-sS", "--max-time", "1", "-o", os.DevNull,
			"tftp://127.0.0.1:"+port+"/ready").Run() != nil {
			if time.Now().After(deadline) {
				b.Fatal("tftpd-hpa did not answer")
			}
			time.Sleep(50 * time.Millisecond)
		}
		fetch(b, port)
	})
}

func freeUDPPort(b *testing.B) string {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	_, port, _ := net.SplitHostPort(c.LocalAddr().String())
	return port
}
