#!/usr/bin/env bash
# Runs CI as a brand-new machine would: a fresh Debian root made by
# mmdebstrap (minbase: no libvirt, QEMU, PostgreSQL, Chromium, caches or Go
# modules), with only this machine's Go toolchain copied in, a clean clone
# of the committed HEAD, and its own mount and PID namespaces so that no
# daemon, socket or cache of this machine is visible. Inside, `.ci/run`
# installs the packages and runs make test. Prints the cold wall time.
#
#   .ci/fresh-root.sh            # build the root in a temporary directory
#   FRESH_KEEP=1 .ci/fresh-root.sh   # keep it afterwards (path printed)
#
# Needs root, mmdebstrap and the Debian mirror apt uses; the root shares
# this machine's network (apt and the Go module proxy) and /dev (KVM, tun).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "fresh-root: run as root (mmdebstrap, chroot, namespaces)" >&2; exit 1; }
for tool in mmdebstrap unshare chroot pivot_root git go; do
	command -v "$tool" >/dev/null || { echo "fresh-root: $tool not found (apt-get install mmdebstrap util-linux)" >&2; exit 1; }
done

# apt_uris prints the URIs of apt's active sources (deb822 and one-line).
apt_uris() {
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] && sed -n 's/^[[:space:]]*URIs:[[:space:]]*//p' "$f" | tr ' ' '\n'
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] && awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }; print $i }' "$f"
	done
	return 0
}

mirror=${MIRROR:-}
if [ -z "$mirror" ]; then
	mirror=$(apt_uris | grep -v -- '-security' | head -1 || true)
fi
[ -n "$mirror" ] || { echo "fresh-root: no Debian mirror in apt sources; set MIRROR" >&2; exit 1; }

work=$(mktemp -d /var/tmp/fibrix-fresh.XXXXXX)
root=$work/root
cleanup() {
	if [ -z "${FRESH_KEEP:-}" ]; then
		rm -rf --one-file-system "$work"
	else
		echo "fresh-root: kept $root"
	fi
}
trap cleanup EXIT

start=$(date +%s)
echo "fresh-root: debootstrapping bookworm from $mirror into $root"
mmdebstrap --quiet --variant=minbase --mode=root --include=ca-certificates,git,make,procps \
	bookworm "$root" "deb $mirror bookworm main" "deb $mirror bookworm-updates main"
cp /etc/resolv.conf "$root/etc/resolv.conf"
# The security suite too, as on a real machine; same keyring.
apt_uris | grep -- '-security' | head -1 |
	while read -r sec; do echo "deb $sec bookworm-security main" >"$root/etc/apt/sources.list.d/security.list"; done

# What a new machine of this kind comes with besides its packages: the Go
# toolchain and its settings, and the certificate authorities this network
# needs (TLS to the module proxy).
goroot=$(go env GOROOT)
mkdir -p "$root/usr/local"
cp -a "$goroot" "$root/usr/local/go"
goenv=$(go env GOENV)
if [ -f "$goenv" ]; then
	mkdir -p "$root/root/.config/go"
	cp "$goenv" "$root/root/.config/go/env"
fi
if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
	cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
	chroot "$root" update-ca-certificates >/dev/null
fi
git clone --quiet --no-hardlinks "$repo" "$root/src/fibrix"
[ -d "$repo/../shared" ] && cp -a "$repo/../shared" "$root/src/shared"
echo "fresh-root: root ready after $(( $(date +%s) - start )) s; running .ci/run inside"

run_start=$(date +%s)
set +e
unshare --mount --pid --fork --propagation private bash -euc '
	root=$1
	# The root becomes / of this mount namespace (pivot_root, not chroot),
	# as on a machine: ip netns, libvirt and mmdebstrap change the
	# propagation of /, and libvirt builds each guest'"'"'s private /dev from
	# the mount table, which must not show this machine'"'"'s mounts.
	mount --bind "$root" "$root"
	mount -t proc proc "$root/proc"
	mount --rbind /sys "$root/sys"
	mount --rbind /dev "$root/dev"
	mount -t tmpfs tmpfs "$root/run"
	mkdir -p "$root/run/lock" "$root/.oldroot"
	mount -t tmpfs tmpfs "$root/tmp"
	chmod 1777 "$root/tmp"
	cd "$root"
	pivot_root . .oldroot
	umount -l /.oldroot
	rmdir /.oldroot
	exec /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 CI=true GOTOOLCHAIN=local \
		PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		bash -c "cd /src/fibrix && bash .ci/run </dev/null"
' fresh "$root"
rc=$?
set -e
end=$(date +%s)
echo "fresh-root: .ci/run exited $rc after $(( end - run_start )) s (whole check $(( end - start )) s)"
exit $rc
