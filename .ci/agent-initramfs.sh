#!/usr/bin/env bash
# Builds the bare-metal commissioning/deploy boot files OUT/vmlinuz and
# OUT/initrd.img (default out/agent) from Debian packages only: the kernel
# that linux-image-amd64 depends on, busybox-static (shell, udhcpc, insmod)
# and our static fibrix-agent. Nothing is downloaded from outside the Debian
# mirror apt already uses and no binary is committed. The .debs are cached in
# $AGENT_DEB_CACHE (default $XDG_CACHE_HOME/fibrix/agent-debs).
#
# Environment: AGENT=path of a built fibrix-agent (else built here with $GO),
# AGENT_MODULES=kernel modules to load at boot (their dependencies are added).
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:-out/agent}
cache=${AGENT_DEB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fibrix/agent-debs}
# Disk and NIC drivers of common servers and of QEMU machines, the in-band
# IPMI device so commissioning can see a BMC, and ext4 so a deploy can write
# the cloud-init seed into the image's root filesystem. ext4 and jbd2 find
# crc32c through the crypto API when a filesystem is mounted (a soft
# dependency .modinfo does not list, and there is no modprobe to load it on
# demand), so a crc32c driver is loaded first: the generic one always works,
# the SSE4.2 one is faster where the CPU has it (elsewhere its insmod fails
# harmlessly).
modules=${AGENT_MODULES:-virtio_pci virtio_net virtio_blk virtio_scsi sd_mod ahci e1000 e1000e ipmi_si ipmi_devintf crc32c_generic crc32c_intel ext4}

for tool in apt-get apt-cache dpkg-deb cpio gzip; do
	command -v "$tool" >/dev/null || { echo "agent-initramfs: $tool not found (apt-get install cpio)" >&2; exit 1; }
done

apt_opts=(-qq)
# apt's sandbox user cannot write into root's private cache directory.
[ "$(id -u)" = 0 ] && apt_opts+=(-o APT::Sandbox::User=root)

# fetch PACKAGE: prints the path of the candidate version's .deb, downloading it once.
fetch() {
	local pkg=$1 ver deb
	ver=$(apt-cache policy "$pkg" | awk '/Candidate:/ { print $2 }')
	if [ -z "$ver" ] || [ "$ver" = "(none)" ]; then
		echo "agent-initramfs: no candidate for $pkg (apt-get update?)" >&2
		return 1
	fi
	deb=$cache/${pkg}_${ver//:/%3a}_amd64.deb
	if [ ! -s "$deb" ]; then
		mkdir -p "$cache"
		(cd "$cache" && apt-get "${apt_opts[@]}" download "$pkg=$ver")
	fi
	echo "$deb"
}

kpkg=$(apt-cache depends linux-image-amd64 | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
[ -n "$kpkg" ] || { echo "agent-initramfs: linux-image-amd64 names no kernel package" >&2; exit 1; }
kver=${kpkg#linux-image-}
kdeb=$(fetch "$kpkg")
bbdeb=$(fetch busybox-static)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,run,lib/modules/"$kver"}

# Only the kernel image and the module tree: the .deb is ~70 MB, the rest is not needed.
dpkg-deb --fsys-tarfile "$kdeb" | tar -x -C "$work" "./boot/vmlinuz-$kver" "./lib/modules/$kver"
moddir=$work/lib/modules/$kver
dpkg-deb --fsys-tarfile "$bbdeb" | tar -x -C "$work" ./bin/busybox
install -m 0755 "$work/bin/busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"

# Modules: each wanted one that is not built in, after its dependencies (read
# from the module's own .modinfo: the package has no modules.dep before depmod).
declare -A seen=()
order=()
builtin() { grep -qE "/(${1//[-_]/[-_]})\.ko$" "$moddir/modules.builtin"; }
modfile() { find "$moddir/kernel" -regextype posix-extended -regex ".*/(${1//[-_]/[-_]})\.ko" -print -quit; }
add() {
	local m=$1 f deps d
	[ -n "${seen[$m]:-}" ] && return 0
	seen[$m]=1
	builtin "$m" && return 0
	f=$(modfile "$m")
	[ -n "$f" ] || { echo "agent-initramfs: module $m not in $kpkg" >&2; exit 1; }
	deps=$(grep -a -o -m1 'depends=[A-Za-z0-9_,-]*' "$f" | head -n1 | cut -d= -f2)
	for d in ${deps//,/ }; do add "$d"; done
	order+=("${f#"$moddir"/}")
}
for m in $modules; do add "$m"; done
: >"$root/etc/modules"
for rel in "${order[@]}"; do
	mkdir -p "$root/lib/modules/$kver/$(dirname "$rel")"
	cp "$moddir/$rel" "$root/lib/modules/$kver/$rel"
	echo "$kver/$rel" >>"$root/etc/modules"
done

if [ -n "${AGENT:-}" ]; then
	install -m 0755 "$AGENT" "$root/fibrix-agent"
else
	CGO_ENABLED=0 "${GO:-go}" build -trimpath -ldflags "-s -w" -o "$root/fibrix-agent" ./cmd/fibrix-agent
fi

cat >"$root/etc/udhcpc.script" <<'SCRIPT'
#!/bin/sh
# udhcpc hook: apply the lease to the interface.
case "$1" in
deconfig)
	ip -4 addr flush dev "$interface"
	ip link set "$interface" up
	;;
bound | renew)
	ip -4 addr flush dev "$interface"
	ip addr add "$ip/${mask:-24}" dev "$interface"
	if [ -n "$router" ]; then
		ip route del default 2>/dev/null
		for r in $router; do ip route add default via "$r" dev "$interface" && break; done
	fi
	: >/etc/resolv.conf
	for d in $dns; do echo "nameserver $d" >>/etc/resolv.conf; done
	;;
esac
exit 0
SCRIPT
chmod 0755 "$root/etc/udhcpc.script"

cat >"$root/init" <<'SCRIPT'
#!/bin/sh
# Fibrix agent environment: drivers, the boot NIC up with DHCP, then the agent.
/bin/busybox --install -s
mount -t devtmpfs devtmpfs /dev
# The initramfs has no /dev/console node of its own: take the console now.
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
echo "FIBRIX-INIT: up"
while read -r m; do insmod "/lib/modules/$m" 2>/dev/null; done </etc/modules

mac=
for p in $(cat /proc/cmdline); do
	case "$p" in fibrix.mac=*) mac=$(echo "${p#fibrix.mac=}" | tr 'A-F-' 'a-f:') ;; esac
done

# The boot NIC: the one with fibrix.mac, else the first with link (drivers
# and links take a moment to come up, so look for up to 15 s).
iface=
i=0
while [ -z "$iface" ] && [ $i -lt 30 ]; do
	for d in /sys/class/net/*; do
		[ -e "$d/device" ] || continue
		n=${d##*/}
		if [ -n "$mac" ]; then
			[ "$(cat "$d/address")" = "$mac" ] && iface=$n && break
		else
			ip link set "$n" up 2>/dev/null
			[ "$(cat "$d/carrier" 2>/dev/null)" = 1 ] && iface=$n && break
		fi
	done
	[ -n "$iface" ] || { sleep 0.5; i=$((i + 1)); }
done

if [ -z "$iface" ]; then
	echo "FIBRIX-INIT: no boot NIC found (fibrix.mac=$mac)"
else
	ip link set lo up
	ip link set "$iface" up
	echo "FIBRIX-INIT: DHCP on $iface"
	udhcpc -i "$iface" -n -q -t 10 -T 2 -s /etc/udhcpc.script
	/fibrix-agent -mac "$(cat "/sys/class/net/$iface/address")"
	echo "FIBRIX-INIT: agent exited with status $?"
fi
# Init must not exit. Leave a console shell for staff; the region's phase
# timeout powers the machine off through its BMC.
while :; do setsid cttyhack sh; done
SCRIPT
chmod 0755 "$root/init"

mkdir -p "$out"
cp "$work/boot/vmlinuz-$kver" "$out/vmlinuz"
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -9n >"$out/initrd.img.tmp"
mv "$out/initrd.img.tmp" "$out/initrd.img"
echo "agent-initramfs: $out/vmlinuz ($kpkg), $out/initrd.img ($(du -k "$out/initrd.img" | cut -f1) KiB; modules: ${order[*]##*/})"
