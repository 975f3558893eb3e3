#!/usr/bin/env bash
# TFTP side by side: a 50 MiB file at blksize 1468 fetched with curl from our
# tftpd, tftpd-hpa and (when found) atftpd, all on loopback, servers on
# core 0 (GOMAXPROCS=1 for ours), curl on core 1, alternating rounds.
# Reports MiB/s and MiB per server CPU-second (utime+stime of the server and
# its reaped children: tftpd-hpa forks one per transfer), medians, ratios.
#   TFTP_BENCH_ROUNDS (3)  ATFTPD (path; default atftpd on PATH, else an
#   unpacked copy under $ATFTPD_ROOT/usr/sbin: `apt-get download atftpd &&
#   dpkg-deb -x atftpd_*.deb DIR`, since atftpd conflicts with tftpd-hpa)
# Needs the Debian packages curl, tftpd-hpa, util-linux (taskset).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${TFTP_BENCH_ROUNDS:-3}
export PATH=$PATH:/usr/sbin:/sbin
for tool in curl in.tftpd taskset; do
	command -v "$tool" >/dev/null || { echo "bench-tftp: $tool missing (Debian packages curl, tftpd-hpa, util-linux)" >&2; exit 1; }
done
atftpd=${ATFTPD:-$(command -v atftpd || true)}
if [ -z "$atftpd" ] && [ -n "${ATFTPD_ROOT:-}" ] && [ -x "$ATFTPD_ROOT/usr/sbin/atftpd" ]; then atftpd=$ATFTPD_ROOT/usr/sbin/atftpd; fi
[ -n "$atftpd" ] || echo "bench-tftp: atftpd not found (apt-get download atftpd; dpkg-deb -x atftpd_*.deb DIR; ATFTPD_ROOT=DIR); measuring without it" >&2
w=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$w"
}
trap cleanup EXIT
hz=$(getconf CLK_TCK)
ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13 + $14 + $15}'; }
size=$((50 << 20))
mkdir -p "$w/root"
chmod 755 "$w" "$w/root" # tftpd-hpa chroots there and drops to its own user
head -c "$size" /dev/urandom >"$w/root/image"
chmod 644 "$w/root/image"
ours_port=6971 hpa_port=6972 atftp_port=6973

go build -o "$w/benchserve" ./provisioner/dhcpd/internal/benchserve
GOMAXPROCS=1 taskset -c 0 "$w/benchserve" tftp -root "$w/root" -listen "127.0.0.1:$ours_port" >"$w/ours.log" 2>&1 &
pids+=($!)
declare -A pid port
pid[ours]=$! port[ours]=$ours_port
taskset -c 0 in.tftpd -L -s "$w/root" -a "127.0.0.1:$hpa_port" &
pids+=($!)
pid[tftpd-hpa]=$! port[tftpd-hpa]=$hpa_port
names="ours tftpd-hpa"
if [ -n "$atftpd" ]; then
	taskset -c 0 "$atftpd" --daemon --no-fork --user root --group root --port "$atftp_port" --bind-address 127.0.0.1 \
		--logfile "$w/atftpd.log" "$w/root" &
	pids+=($!)
	pid[atftpd]=$! port[atftpd]=$atftp_port
	names="$names atftpd"
fi
for n in $names; do
	for _ in $(seq 50); do
		curl -sS --max-time 1 -r 0-0 -o /dev/null "tftp://127.0.0.1:${port[$n]}/image" 2>/dev/null && break
		curl -sS --max-time 1 -o /dev/null "tftp://127.0.0.1:${port[$n]}/nonexistent" 2>&1 | grep -q "not found\|TFTP" && break
		sleep 0.1
	done
done

# tftpd-hpa forks a child per transfer and ignores SIGCHLD, so the child's
# CPU never reaches the parent's counters: sample the children while the
# transfer runs (every 20 ms; the last few milliseconds of a child escape).
run() { # name → one result line
	local before after out secs got c t kids=0 cur
	declare -A seen=()
	before=$(ticks "${pid[$1]}")
	taskset -c 1 curl -sS --tftp-blksize 1468 -o /dev/null -w '%{size_download} %{time_total}' \
		"tftp://127.0.0.1:${port[$1]}/image" >"$w/curl.out" &
	cur=$!
	while kill -0 "$cur" 2>/dev/null; do
		for c in $(pgrep -P "${pid[$1]}" || true); do
			t=$(sed 's/.*) //' "/proc/$c/stat" 2>/dev/null | awk '{print $12 + $13}') || continue
			[ -n "$t" ] && seen[$c]=$t
		done
		sleep 0.02
	done
	wait "$cur"
	out=$(cat "$w/curl.out")
	after=$(ticks "${pid[$1]}")
	for c in "${!seen[@]}"; do kids=$((kids + seen[$c])); done
	after=$((after + kids))
	read -r got secs <<<"$out"
	[ "$got" = "$size" ] || { echo "bench-tftp: $1 sent $got bytes, want $size" >&2; exit 1; }
	awk -v n="$1" -v s="$secs" -v t="$((after - before))" -v hz="$hz" 'BEGIN {
		cpu = t / hz; printf "%s mib_s=%.1f secs=%.2f cpu_s=%.2f per_cpu_s=%.1f\n", n, 50 / s, s, cpu, (cpu > 0 ? 50 / cpu : 0) }'
}
: >"$w/results"
for r in $(seq "$rounds"); do
	for n in $names; do
		run "$n" | tee -a "$w/results"
	done
done
median() { grep "^$1 " "$w/results" | sed -E "s/.*$2=([0-9.]+).*/\1/" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
line="median:"
for n in $names; do line="$line $n $(median "$n" mib_s) MiB/s, $(median "$n" per_cpu_s) MiB/CPU-s;"; done
echo "$line"
for n in $names; do
	[ "$n" = ours ] && continue
	awk -v n="$n" -v a="$(median ours mib_s)" -v b="$(median "$n" mib_s)" -v c="$(median ours per_cpu_s)" -v d="$(median "$n" per_cpu_s)" \
		'BEGIN { printf "ratio ours/%s: %.2f MiB/s, %.2f per CPU-second\n", n, a / b, (d > 0 ? c / d : 0) }'
done
