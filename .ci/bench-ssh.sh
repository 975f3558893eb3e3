#!/usr/bin/env bash
# SSH gateway side by side with direct OpenSSH: the real ssh client jumps
# through the gateway (ssh -J) into Debian's sshd on 127.0.0.2, or connects
# to the same sshd directly. Reports the median login round trip
# (ssh … true) and the median throughput of cat > /dev/null, with ratios.
#   SSH_BENCH_RUNS (20)  SSH_BENCH_MIB (200)
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in ssh /usr/sbin/sshd; do
	command -v "$tool" >/dev/null || { echo "bench-ssh: $tool missing (Debian packages openssh-client, openssh-server)" >&2; exit 1; }
done
go test -count=1 -timeout 30m -run '^TestSSHBench$' ./provisioner/gateway \
	-sshbench -sshbench.runs "${SSH_BENCH_RUNS:-20}" -sshbench.mib "${SSH_BENCH_MIB:-200}" -v 2>&1 |
	grep -E '^(ssh |--- |FAIL|ok|panic)|gateway_test|lab_test'
