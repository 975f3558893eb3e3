#!/usr/bin/env bash
# Authoritative DNS side by side: our name server vs NSD and Knot on the
# same 10,000-record zone (written from the same snapshot), each server with
# one worker on core 0, dnsperf on core 1. Reports raw qps and queries per
# server CPU-second, ratios ours/NSD, ours/Knot and ours/dnsmasq, medians over
# alternating rounds. Knot is skipped when knotd is not installed (Debian
# knot), dnsmasq when it is not (Debian dnsmasq-base).
#   DNS_BENCH_SECONDS (10)  DNS_BENCH_ROUNDS (3)
#   DNS_BENCH_BASELINE: another checkout of this module (e.g. from
#   `git archive HEAD`); its name server joins the rounds as "base", so a
#   change is measured before/after under the same load.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${DNS_BENCH_SECONDS:-10}
rounds=${DNS_BENCH_ROUNDS:-3}
for tool in dnsperf nsd taskset; do
	command -v "$tool" >/dev/null || { echo "bench-dns: $tool missing (Debian packages dnsperf, nsd, util-linux)" >&2; exit 1; }
done
w=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$w"
}
trap cleanup EXIT
ours_port=5390 nsd_port=5391 knot_port=5392 base_port=5393 dnsmasq_port=5394
hz=$(getconf CLK_TCK)

# CPU ticks (utime+stime) of a process and all its descendants; the fields
# are counted after the command name, which may hold spaces ("nsd: server 1").
ticks() {
	local total=0 p
	for p in $1 $(pgrep -P "$1" || true); do
		[ "$p" = "$1" ] || { total=$((total + $(ticks "$p"))); continue; }
		total=$((total + $(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}')))
	done
	echo "$total"
}

go test -c -o "$w/nameserver.test" ./provisioner/nameserver
GOMAXPROCS=1 taskset -c 0 "$w/nameserver.test" -test.run '^TestServeForBench$' -test.timeout 0 \
	-dnsbench.dir "$w" -dnsbench.listen "127.0.0.1:$ours_port" >"$w/ours.log" 2>&1 &
ours=$!
pids+=("$ours")
for _ in $(seq 100); do grep -q ready "$w/ours.log" && break; sleep 0.1; done
grep -q ready "$w/ours.log" || { cat "$w/ours.log"; exit 1; }

cat >"$w/nsd.conf" <<CONF
server:
	ip-address: 127.0.0.1@$nsd_port
	server-count: 1
	username: ""
	chroot: ""
	zonesdir: "$w"
	database: ""
	zonelistfile: "$w/zone.list"
	xfrdfile: "$w/xfrd.state"
	pidfile: "$w/nsd.pid"
	logfile: "$w/nsd.log"
	minimal-responses: yes
	# Response rate limiting would drop the repeated NXDOMAIN probes.
	rrl-ratelimit: 0
	rrl-whitelist-ratelimit: 0
remote-control:
	control-enable: no
zone:
	name: cloud.internal
	zonefile: cloud.internal.zone
CONF
taskset -c 0 nsd -d -c "$w/nsd.conf" &
nsdpid=$!
pids+=("$nsdpid")
ports="$ours_port $nsd_port"
peers="nsd"
if command -v knotd >/dev/null; then
	mkdir "$w/knot"
	cat >"$w/knot.conf" <<CONF
server:
    listen: 127.0.0.1@$knot_port
    rundir: "$w/knot"
    pidfile: "$w/knot/knot.pid"
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "$w/knot"
control:
    listen: "$w/knot/knot.sock"
log:
  - target: stderr
    any: warning
zone:
  - domain: cloud.internal
    file: "$w/cloud.internal.zone"
    zonefile-sync: -1
    journal-content: none
CONF
	taskset -c 0 knotd -c "$w/knot.conf" 2>"$w/knot.log" &
	knotpid=$!
	pids+=("$knotpid")
	ports="$ports $knot_port"
	peers="nsd knot"
fi
if command -v dnsmasq >/dev/null; then
	# dnsmasq has no zone files: the zone's A records become a hosts file
	# (same names, same addresses, the zone's TTL), and --local makes it
	# answer NXDOMAIN for other names in the zone instead of forwarding.
	# With --cache-size=0 only the hosts records are held; they are served
	# regardless. --user=root: the work directory is not readable by nobody.
	awk '$3 == "IN" && $4 == "A" { n = $1; sub(/\.$/, "", n); print $5, n }' "$w/cloud.internal.zone" >"$w/dnsmasq.hosts"
	taskset -c 0 dnsmasq --keep-in-foreground --port="$dnsmasq_port" --listen-address=127.0.0.1 --bind-interfaces \
		--no-resolv --no-hosts --addn-hosts="$w/dnsmasq.hosts" --local=/cloud.internal/ --cache-size=0 \
		--local-ttl=300 --user=root --pid-file= --log-facility=- 2>"$w/dnsmasq.log" &
	dnsmasqpid=$!
	pids+=("$dnsmasqpid")
	ports="$ports $dnsmasq_port"
	peers="$peers dnsmasq"
fi
if [ -n "${DNS_BENCH_BASELINE:-}" ]; then
	mkdir "$w/base"
	(cd "$DNS_BENCH_BASELINE" && go test -c -o "$w/base.test" ./provisioner/nameserver)
	GOMAXPROCS=1 taskset -c 0 "$w/base.test" -test.run '^TestServeForBench$' -test.timeout 0 \
		-dnsbench.dir "$w/base" -dnsbench.listen "127.0.0.1:$base_port" >"$w/base.log" 2>&1 &
	basepid=$!
	pids+=("$basepid")
	for _ in $(seq 100); do grep -q ready "$w/base.log" && break; sleep 0.1; done
	grep -q ready "$w/base.log" || { cat "$w/base.log"; exit 1; }
	ports="$ports $base_port"
	peers="base $peers"
fi
for p in $ports; do
	for _ in $(seq 100); do dig +short +time=1 +tries=1 @127.0.0.1 -p "$p" vm1.tenant1.cloud.internal A 2>/dev/null | grep -q 10.64 && break; sleep 0.1; done
done
for p in $ports; do
	got=$(dig +short @127.0.0.1 -p "$p" vm258.tenant58.cloud.internal A)
	[ "$got" = 10.64.1.2 ] || { echo "bench-dns: server on port $p answered '$got'" >&2; exit 1; }
done

run() { # name pid port → "qps qps_per_cpu_second"
	local before after out qps lost
	before=$(ticks "$2")
	out=$(taskset -c 1 dnsperf -s 127.0.0.1 -p "$3" -d "$w/queries" -l "$secs" -q 200 2>&1)
	after=$(ticks "$2")
	qps=$(awk '/Queries per second/ {print $4}' <<<"$out")
	lost=$(awk '/Queries lost/ {print $3}' <<<"$out")
	awk -v q="$qps" -v t="$((after - before))" -v hz="$hz" -v s="$secs" -v n="$1" -v l="$lost" \
		'BEGIN { cpu = t / hz; printf "%s qps=%.0f cpu_s=%.2f per_cpu_s=%.0f lost=%s\n", n, q, cpu, (cpu > 0 ? q * s / cpu : 0), l }'
}
: >"$w/results"
for r in $(seq "$rounds"); do
	run ours "$ours" "$ours_port" | tee -a "$w/results"
	run nsd "$nsdpid" "$nsd_port" | tee -a "$w/results"
	[ -z "${knotpid:-}" ] || run knot "$knotpid" "$knot_port" | tee -a "$w/results"
	[ -z "${dnsmasqpid:-}" ] || run dnsmasq "$dnsmasqpid" "$dnsmasq_port" | tee -a "$w/results"
	[ -z "${basepid:-}" ] || run base "$basepid" "$base_port" | tee -a "$w/results"
done
median() { grep "^$1 " "$w/results" | sed -E "s/.*$2=([0-9.]+).*/\1/" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
oq=$(median ours qps) oc=$(median ours per_cpu_s)
echo "median: ours ${oq} qps, ${oc} q/CPU-s"
for peer in $peers; do
	pq=$(median "$peer" qps) pc=$(median "$peer" per_cpu_s)
	echo "median: ${peer} ${pq} qps, ${pc} q/CPU-s"
	awk -v a="$oq" -v b="$pq" -v c="$oc" -v d="$pc" -v n="$peer" 'BEGIN { printf "ratio ours/%s: %.2f raw, %.2f per CPU-second\n", n, a / b, c / d }'
done
