#!/usr/bin/env bash
# DHCPv4 side by side: our dhcpd (durable leases in SQLite) vs Kea (memfile
# leases, raw sockets) vs dnsmasq (lease file), each in turn on the same
# address in a server network namespace, driven by perfdhcp (a relay, so the
# giaddr path) from a client namespace across a veth pair. Servers on core 0
# (GOMAXPROCS=1 for ours; Kea and dnsmasq are single-threaded), perfdhcp on
# core 1. For each server the rate rises until drops reach 1 %; reported:
# the highest clean rate, DORA/s and DORA per server CPU-second at it, and
# the ratios ours/Kea and ours/dnsmasq.
#   DHCP_BENCH_SECONDS (10)  DHCP_BENCH_RATES ("100 250 500 1000 2000 4000")
#   DHCP_BENCH_CLIENTS (1000)  DHCP_BENCH_ROUNDS (1)  DHCP_BENCH_SERVERS ("ours kea dnsmasq")
# Needs root and the Debian packages kea-admin (perfdhcp), kea-dhcp4-server,
# dnsmasq-base, iproute2, util-linux (taskset).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${DHCP_BENCH_SECONDS:-10}
rates=${DHCP_BENCH_RATES:-100 250 500 1000 2000 4000}
clients=${DHCP_BENCH_CLIENTS:-1000}
rounds=${DHCP_BENCH_ROUNDS:-1}
servers=${DHCP_BENCH_SERVERS:-ours kea dnsmasq}
export PATH=$PATH:/usr/sbin:/sbin
for tool in perfdhcp kea-dhcp4 dnsmasq ip taskset; do
	command -v "$tool" >/dev/null || { echo "bench-dhcp: $tool missing (Debian packages kea-admin, kea-dhcp4-server, dnsmasq-base, iproute2, util-linux)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "bench-dhcp: needs root (network namespaces)" >&2; exit 1; }
w=$(mktemp -d)
srv=fx-bench-dhcp-s-$$ cli=fx-bench-dhcp-c-$$
server=
cleanup() {
	[ -n "$server" ] && { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; }
	ip netns del "$srv" 2>/dev/null || true
	ip netns del "$cli" 2>/dev/null || true
	rm -rf "$w"
}
trap cleanup EXIT
hz=$(getconf CLK_TCK)
ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13 + $14 + $15}'; }

ip netns add "$srv"
ip netns add "$cli"
ip -n "$srv" link set lo up
ip -n "$cli" link set lo up
ip -n "$srv" link add vs type veth peer name vc netns "$cli"
ip -n "$srv" addr add 10.213.0.1/16 dev vs
ip -n "$cli" addr add 10.213.0.2/16 dev vc
ip -n "$srv" link set vs up
ip -n "$cli" link set vc up
pool_start=10.213.1.0 pool_end=10.213.250.255

go build -o "$w/benchserve" ./provisioner/dhcpd/internal/benchserve

cat >"$w/kea.json" <<CONF
{ "Dhcp4": {
	"interfaces-config": { "interfaces": [ "vs" ], "dhcp-socket-type": "raw" },
	"lease-database": { "type": "memfile", "persist": true, "name": "$w/kea-leases4.csv", "lfc-interval": 0 },
	"valid-lifetime": 3600,
	"subnet4": [ { "id": 1, "subnet": "10.213.0.0/16", "pools": [ { "pool": "$pool_start - $pool_end" } ] } ],
	"loggers": [ { "name": "kea-dhcp4", "output_options": [ { "output": "$w/kea.log" } ], "severity": "WARN" } ]
} }
CONF

# start NAME: runs the server pinned to core 0 in the server namespace
# (ip netns exec, taskset and env all exec, so $! is the server itself).
start() {
	rm -f "$w"/leases.db* "$w"/kea-leases4.csv* "$w"/dnsmasq.leases
	case $1 in
	ours) ip netns exec "$srv" taskset -c 0 env GOMAXPROCS=1 "$w/benchserve" dhcp -db "$w/leases.db" -iface vs \
		-server-ip 10.213.0.1 -cidr 10.213.0.0/16 -start $pool_start -end $pool_end >"$w/ours.log" 2>&1 & ;;
	kea) ip netns exec "$srv" taskset -c 0 env KEA_PIDFILE_DIR="$w" KEA_LOCKFILE_DIR="$w" \
		kea-dhcp4 -c "$w/kea.json" >"$w/kea.out" 2>&1 & ;;
	dnsmasq) ip netns exec "$srv" taskset -c 0 dnsmasq --no-daemon --port=0 --interface=vs --bind-interfaces \
		--no-ping --quiet-dhcp --dhcp-authoritative --dhcp-lease-max=1000000 --pid-file="$w/dnsmasq.pid" \
		--dhcp-range=$pool_start,$pool_end,255.255.0.0,1h --dhcp-leasefile="$w/dnsmasq.leases" >"$w/dnsmasq.out" 2>&1 & ;;
	esac
	server=$!
	# Ready when a short, slow perfdhcp run gets its answers.
	for _ in $(seq 50); do
		if ip netns exec "$cli" perfdhcp -4 -l vc -r 10 -p 1 -R 10 2>&1 | grep -q "received packets: [1-9]"; then return; fi
		kill -0 "$server" 2>/dev/null || break
		sleep 0.2
	done
	echo "bench-dhcp: $1 did not answer" >&2
	cat "$w"/*.log "$w"/*.out 2>/dev/null >&2 || true
	exit 1
}
stop() { kill "$server"; wait "$server" 2>/dev/null || true; server=; }

# run NAME RATE → one result line
run() {
	local before after out
	before=$(ticks "$server")
	out=$(ip netns exec "$cli" taskset -c 1 perfdhcp -4 -l vc -r "$2" -p "$secs" -R "$clients" 2>&1 || true)
	after=$(ticks "$server")
	awk -v n="$1" -v r="$2" -v s="$secs" -v t="$((after - before))" -v hz="$hz" '
		/sent packets:/ { sent[++ns] = $3 } /received packets:/ { recv[++nr] = $3 }
		END {
			cpu = t / hz; acks = recv[2] + 0
			d1 = sent[1] ? 100 * (1 - recv[1] / sent[1]) : 100
			d2 = sent[2] ? 100 * (1 - recv[2] / sent[2]) : 100
			printf "%s rate=%d dora_s=%.0f drop_discover=%.2f drop_request=%.2f cpu_s=%.2f per_cpu_s=%.0f\n",
				n, r, acks / s, d1, d2, cpu, (cpu > 0 ? acks / cpu : 0)
		}' <<<"$out"
}

: >"$w/results"
for round in $(seq "$rounds"); do
	for name in $servers; do
		for rate in $rates; do
			start "$name"
			line=$(run "$name" "$rate")
			stop
			echo "round=$round $line" | tee -a "$w/results"
			awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
				END { exit !(v["drop_discover"] >= 1 || v["drop_request"] >= 1) }' <<<"$line" && break
		done
	done
done

# Per server: the highest rate with < 1 % drops in both exchanges, and the
# figures of the last round at that rate.
best() {
	awk -v n="$1" '$2 == n { for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
		if (v["drop_discover"] < 1 && v["drop_request"] < 1 && v["rate"] + 0 >= top) { top = v["rate"] + 0; d = v["dora_s"]; c = v["per_cpu_s"] } }
		END { printf "%d %d %d\n", top, d, c }' "$w/results"
}
read -r or od oc <<<"$(best ours)"
read -r kr kd kc <<<"$(best kea)"
read -r dr dd dc <<<"$(best dnsmasq)"
echo "clean (<1 % drops): ours ${or}/s → ${od} DORA/s, ${oc} DORA/CPU-s; Kea ${kr}/s → ${kd} DORA/s, ${kc} DORA/CPU-s; dnsmasq ${dr}/s → ${dd} DORA/s, ${dc} DORA/CPU-s"
awk -v a="$od" -v b="$kd" -v c="$dd" -v x="$oc" -v y="$kc" -v z="$dc" 'BEGIN {
	printf "ratio ours/Kea: %.2f DORA/s, %.2f per CPU-second; ours/dnsmasq: %.2f DORA/s, %.2f per CPU-second\n",
		(b ? a / b : 0), (y ? x / y : 0), (c ? a / c : 0), (z ? x / z : 0) }'
