package gateway_test

import (
	"crypto/rand"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/fibrixcloud/fibrix/provisioner/gateway"
)

var (
	benchSSH  = flag.Bool("sshbench", false, "measure login time and throughput through the gateway vs direct OpenSSH (.ci/bench-ssh.sh)")
	benchRuns = flag.Int("sshbench.runs", 20, "logins per path for -sshbench")
	benchMiB  = flag.Int("sshbench.mib", 200, "MiB sent per throughput run for -sshbench")
)

// TestSSHBench compares, with the real OpenSSH client into the same sshd, a
// jump through the gateway against a direct connection: login round trip
// (ssh … true, median) and throughput (cat > /dev/null of random data).
func TestSSHBench(t *testing.T) {
	if !*benchSSH {
		t.Skip("benchmark; run with -sshbench (.ci/bench-ssh.sh)")
	}
	l := newLab(t, gateway.Config{})
	port := l.vmPortArg()
	paths := []struct {
		name string
		args []string
	}{
		{"gateway", []string{"-J", "acme@gw", "-p", port, "root@web.acme.cloud.internal"}},
		{"direct", []string{"-p", port, "root@127.0.0.2"}},
	}
	run := func(stdin []byte, args []string, cmd string) time.Duration {
		t.Helper()
		start := time.Now()
		if _, stderr, st := l.ssh(t, "acme", stdin, append(slices.Clone(args), cmd)...); st != 0 {
			t.Fatalf("ssh %v: exit %d: %s", args, st, stderr)
		}
		return time.Since(start)
	}
	median := func(d []time.Duration) time.Duration {
		slices.Sort(d)
		return d[len(d)/2]
	}

	// Logins alternate between the paths so drift hits both alike.
	logins := map[string][]time.Duration{}
	for range *benchRuns {
		for _, p := range paths {
			logins[p.name] = append(logins[p.name], run([]byte{}, p.args, "true"))
		}
	}

	data := make([]byte, *benchMiB<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(l.dir, "payload")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	rates := map[string][]float64{}
	for range 3 {
		for _, p := range paths {
			d := run(data, p.args, "cat > /dev/null")
			rates[p.name] = append(rates[p.name], float64(*benchMiB)/d.Seconds())
		}
	}
	mrate := func(r []float64) float64 { slices.Sort(r); return r[len(r)/2] }

	gl, dl := median(logins["gateway"]), median(logins["direct"])
	gr, dr := mrate(rates["gateway"]), mrate(rates["direct"])
	fmt.Printf("ssh login round trip (ssh … true, median of %d): gateway %s, direct %s, ratio gateway/direct %.2f\n",
		*benchRuns, gl.Round(time.Millisecond), dl.Round(time.Millisecond), gl.Seconds()/dl.Seconds())
	fmt.Printf("ssh throughput (%d MiB through cat > /dev/null, median of 3): gateway %.0f MiB/s, direct %.0f MiB/s, ratio gateway/direct %.2f\n",
		*benchMiB, gr, dr, gr/dr)
}
