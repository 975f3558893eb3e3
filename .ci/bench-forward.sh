#!/usr/bin/env bash
# HTTP Host routing side by side: our forwarder vs HAProxy and nginx in front
# of the same tiny Go backend, wrk on the other core. Each proxy runs on
# core 0 with one thread (GOMAXPROCS=1 for ours); wrk and the backend share
# core 1. Reports raw req/s and requests per proxy CPU-second (utime+stime
# from /proc/PID/stat), medians over alternating rounds, and ratios.
#   FWD_BENCH_SECONDS (10)  FWD_BENCH_ROUNDS (3)  FWD_BENCH_CONNS (64)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${FWD_BENCH_SECONDS:-10}
rounds=${FWD_BENCH_ROUNDS:-3}
conns=${FWD_BENCH_CONNS:-64}
for tool in wrk haproxy nginx taskset curl; do
	command -v "$tool" >/dev/null || { echo "bench-forward: $tool missing (Debian packages wrk, haproxy, nginx, util-linux, curl)" >&2; exit 1; }
done
w=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$w"
}
trap cleanup EXIT
backend=127.0.0.2:18080 ours=127.0.0.1:18081 hap=127.0.0.1:18082 ngx=127.0.0.1:18083
host=web.acme.cloud.internal
hz=$(getconf CLK_TCK)
ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }

go test -c -o "$w/forwarder.test" ./provisioner/forwarder
taskset -c 1 "$w/forwarder.test" -test.run '^TestServeForBench$' -test.timeout 0 -fwdbench.backend "$backend" >"$w/backend.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q ready "$w/backend.log" && break; sleep 0.1; done
GOMAXPROCS=1 taskset -c 0 "$w/forwarder.test" -test.run '^TestServeForBench$' -test.timeout 0 \
	-fwdbench.listen "$ours" -fwdbench.backend "$backend" >"$w/ours.log" 2>&1 &
ourpid=$!
pids+=("$ourpid")

cat >"$w/haproxy.cfg" <<CONF
global
	nbthread 1
	maxconn 4096
defaults
	mode http
	timeout connect 5s
	timeout client 5m
	timeout server 5m
	timeout http-request 10s
	option forwardfor
	http-reuse always
frontend web
	bind $hap
	use_backend vm if { hdr(host),field(1,:),lower -m str $host }
	default_backend none
backend vm
	server web $backend maxconn 256
backend none
	http-request deny deny_status 404
CONF
taskset -c 0 haproxy -f "$w/haproxy.cfg" -db >"$w/haproxy.log" 2>&1 &
happid=$!
pids+=("$happid")

mkdir -p "$w/nginx"
cat >"$w/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
error_log $w/nginx/error.log;
pid $w/nginx/nginx.pid;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path $w/nginx; proxy_temp_path $w/nginx; fastcgi_temp_path $w/nginx; uwsgi_temp_path $w/nginx; scgi_temp_path $w/nginx;
	upstream vm { server $backend; keepalive 256; }
	server { listen $ngx default_server; return 404; }
	server {
		listen $ngx;
		server_name $host;
		location / {
			proxy_pass http://vm;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_set_header Host \$host;
			proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
			proxy_set_header X-Forwarded-Proto \$scheme;
		}
	}
}
CONF
taskset -c 0 nginx -c "$w/nginx.conf" -e "$w/nginx/error.log" &
ngxpid=$!
pids+=("$ngxpid")

for _ in $(seq 100); do
	grep -q ready "$w/ours.log" 2>/dev/null && curl -sf --max-time 2 -H "Host: $host" "http://$hap/" >/dev/null 2>&1 &&
		curl -sf --max-time 2 -H "Host: $host" "http://$ngx/" >/dev/null 2>&1 && break
	sleep 0.1
done
for a in $ours $hap $ngx; do
	got=$(curl -s --max-time 5 -H "Host: $host" "http://$a/")
	[ "$got" = "hello from the vm" ] || { echo "bench-forward: proxy on $a answered '$got'" >&2; cat "$w"/*.log >&2; exit 1; }
done

run() { # name pid addr → "name rps=… cpu_s=… per_cpu_s=…"
	local before after out rps
	before=$(ticks "$2")
	out=$(taskset -c 1 wrk -t1 -c"$conns" -d"${secs}s" -H "Host: $host" "http://$3/" 2>&1)
	after=$(ticks "$2")
	rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
	if grep -q 'Non-2xx' <<<"$out"; then echo "bench-forward: $1 returned errors: $out" >&2; exit 1; fi
	awk -v r="$rps" -v t="$((after - before))" -v hz="$hz" -v s="$secs" -v n="$1" \
		'BEGIN { cpu = t / hz; printf "%s rps=%.0f cpu_s=%.2f per_cpu_s=%.0f\n", n, r, cpu, (cpu > 0 ? r * s / cpu : 0) }'
}
: >"$w/results"
for _ in $(seq "$rounds"); do
	run ours "$ourpid" "$ours" | tee -a "$w/results"
	run haproxy "$happid" "$hap" | tee -a "$w/results"
	run nginx "$ngxpid" "$ngx" | tee -a "$w/results"
done
median() { grep "^$1 " "$w/results" | sed -E "s/.*$2=([0-9.]+).*/\1/" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
or=$(median ours rps) oc=$(median ours per_cpu_s)
hr=$(median haproxy rps) hc=$(median haproxy per_cpu_s)
nr=$(median nginx rps) nc=$(median nginx per_cpu_s)
echo "median: ours $or req/s, $oc req/CPU-s; HAProxy $hr req/s, $hc req/CPU-s; nginx $nr req/s, $nc req/CPU-s"
awk -v a="$or" -v b="$hr" -v c="$oc" -v d="$hc" -v e="$nr" -v f="$nc" 'BEGIN {
	printf "ratio ours/HAProxy: %.2f raw, %.2f per CPU-second\n", a / b, c / d
	printf "ratio ours/nginx:   %.2f raw, %.2f per CPU-second\n", a / e, c / f }'
