#!/bin/sh
# Builds the Fibrix Cloud guest image offline from Debian packages:
#   OUTPUT/base.qcow2    ext4 root filesystem, no partition table (root=/dev/vda or LABEL=root)
#   OUTPUT/vmlinuz       kernel for direct kernel boot
#   OUTPUT/initrd.img    matching initramfs (virtio drivers only)
#   OUTPUT/packages.txt  installed packages and versions
#   OUTPUT/SHA256SUMS
# Usage: build.sh OUTPUT   (as root; needs mmdebstrap e2fsprogs qemu-utils)
# The mirror is the one apt already uses (/etc/apt/sources.list.d/*.sources or
# /etc/apt/sources.list); set MIRROR to a one-line "deb URI bookworm main" to override.
set -eu

out=${1:?usage: build.sh OUTPUT}
suite=bookworm
# A fixed epoch keeps timestamps, mkfs and the initramfs stable between builds of the
# same package set.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1747699200}
E2FSPROGS_FAKE_TIME=$SOURCE_DATE_EPOCH
export SOURCE_DATE_EPOCH E2FSPROGS_FAKE_TIME
LC_ALL=C.UTF-8
export LC_ALL

for tool in mmdebstrap mkfs.ext4 qemu-img sha256sum; do
	command -v "$tool" >/dev/null || {
		echo "build.sh: $tool not found (apt-get install mmdebstrap e2fsprogs qemu-utils)" >&2
		exit 1
	}
done
[ "$(id -u)" = 0 ] || { echo "build.sh: must run as root (mmdebstrap --mode=root)" >&2; exit 1; }

# apt_mirrors prints one-line sources for every bookworm* suite apt is configured with,
# read from deb822 .sources files and the classic sources.list.
apt_mirrors() {
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk '
			function flush() {
				if (types ~ /(^| )deb( |$)/ && uris != "" && suites != "") {
					nu = split(uris, u, " "); ns = split(suites, s, " ")
					for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++)
						if (s[j] ~ /^bookworm(-updates|-security)?$/)
							print "deb " u[i] " " s[j] " main"
				}
				types = ""; uris = ""; suites = ""
			}
			/^[ \t]*#/ { next }
			/^[ \t]*$/ { flush(); next }
			{ key = tolower($1); sub(/^[^:]*:[ \t]*/, ""); }
			key == "types:" { types = $0 }
			key == "uris:" { uris = $0 }
			key == "suites:" { suites = $0 }
			END { flush() }
		' "$f"
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		awk '$1 == "deb" {
			i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
			if ($(i+1) ~ /^bookworm(-updates|-security)?$/) print "deb " $i " " $(i+1) " main"
		}' "$f"
	done
}

if [ -n "${MIRROR:-}" ]; then
	mirrors=$MIRROR
else
	mirrors=$(apt_mirrors | awk '!seen[$0]++')
fi
[ -n "$mirrors" ] || { echo "build.sh: no bookworm mirror in apt sources; set MIRROR" >&2; exit 1; }
# one mmdebstrap argument per sources line
old_ifs=$IFS
IFS='
'
# shellcheck disable=SC2086
set -- $mirrors
IFS=$old_ifs

mkdir -p "$out"
work=$(mktemp -d "$out/.work.XXXXXX")
# --one-file-system: never descend into a /proc, /sys or /dev mounted in the chroot.
trap 'rm -rf --one-file-system "$work"' EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
root=$work/root

# Only virtio guests boot this image, so the initramfs carries just those drivers: a
# smaller initrd unpacks noticeably faster under TCG than MODULES=most (36 MB).
setup_hook='mkdir -p "$1/etc/initramfs-tools/conf.d" "$1/usr/share/initramfs-tools/modules.d" &&
printf "MODULES=list\nCOMPRESS=gzip\n" >"$1/etc/initramfs-tools/conf.d/fibrix.conf" &&
printf "%s\n" virtio_pci virtio_blk virtio_scsi sd_mod virtio_net virtio_console ext4 crc32c_generic \
	>"$1/usr/share/initramfs-tools/modules.d/fibrix"'

customize() {
	r=$1
	# cloud-init: NoCloud (ISO seed or ds=nocloud-net URL) only, so boots never wait on
	# cloud metadata probes that cannot answer.
	cat >"$r/etc/cloud/cloud.cfg.d/90-fibrix.cfg" <<'EOF'
# Fibrix Cloud guest image
datasource_list: [ NoCloud, None ]
# hostname from meta-data must resolve locally (sudo and sshd look it up)
manage_etc_hosts: true
# no locales are installed; C.UTF-8 is built into libc
locale: false
# no boot loader: the host boots the kernel beside the disk directly
grub_dpkg:
  enabled: false
# RSA keygen costs seconds under emulation; every current client speaks these
ssh_genkeytypes: [ed25519, ecdsa]
EOF
	# ifupdown reads cloud-init's rendered /etc/network/interfaces.d/50-cloud-init.
	cat >"$r/etc/network/interfaces" <<'EOF'
# interfaces(5); cloud-init writes the VM's network configuration into interfaces.d
auto lo
iface lo inet loopback

source /etc/network/interfaces.d/*
EOF
	mkdir -p "$r/etc/network/interfaces.d"
	printf '%s\n' 'LABEL=root / ext4 defaults,errors=remount-ro 0 1' >"$r/etc/fstab"
	# The build host's resolver and name must not leak into VMs: resolvconf applies the
	# dns-nameservers cloud-init renders (static) or dhclient learns (DHCP).
	ln -sfn ../run/resolvconf/resolv.conf "$r/etc/resolv.conf"
	echo localhost >"$r/etc/hostname"
	printf '%s\n' '127.0.0.1 localhost' '::1 localhost ip6-localhost ip6-loopback' >"$r/etc/hosts"
	# cloud-init creates fresh host keys on first boot and prints them to the console.
	rm -f "$r"/etc/ssh/ssh_host_*
	# systemd creates a new machine id per VM when the file is empty.
	: >"$r/etc/machine-id"
	rm -f "$r/var/lib/dbus/machine-id"
	# Kernel and initrd are shipped beside the disk for direct kernel boot.
	kver=$(ls "$r/lib/modules")
	cp "$r/boot/vmlinuz-$kver" "$out/vmlinuz.new"
	cp "$r/boot/initrd.img-$kver" "$out/initrd.img.new"
	rm -f "$r"/boot/vmlinuz-* "$r"/boot/initrd.img-* "$r"/boot/System.map-* "$r"/vmlinuz* "$r"/initrd.img*
	# Drop drivers a virtio VM never loads (graphics, radio, sound, media, hardware NICs).
	m=$r/lib/modules/$kver/kernel
	rm -rf "$m/drivers/gpu" "$m/drivers/media" "$m/drivers/net/wireless" "$m/drivers/net/ethernet" \
		"$m/drivers/infiniband" "$m/drivers/staging" "$m/sound" "$m/drivers/bluetooth" \
		"$m/net/bluetooth" "$m/net/wireless" "$m/net/mac80211" "$m/drivers/iio" "$m/drivers/isdn" \
		"$m/drivers/nfc" "$m/net/nfc" "$m/drivers/thunderbolt" "$m/drivers/hwmon" \
		"$m/drivers/net/can" "$m/drivers/net/usb" "$m/drivers/usb/serial" "$m/drivers/usb/gadget" \
		"$m/drivers/mtd" "$m/drivers/scsi/qla2xxx" "$m/drivers/scsi/lpfc" "$m/drivers/scsi/mpt3sas" \
		"$m/drivers/scsi/qedf" "$m/drivers/scsi/bfa" "$m/drivers/scsi/be2iscsi" "$m/drivers/net/fddi" \
		"$m/drivers/atm" "$m/drivers/memstick" "$m/drivers/mmc" "$m/drivers/firewire" "$m/drivers/pcmcia"
	chroot "$r" depmod -a "$kver"
	# Caches and logs that differ per build and are useless in a fresh VM.
	rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/* "$r"/var/cache/debconf/*-old \
		"$r"/var/log/*.log "$r"/var/log/apt/* "$r"/var/lib/cloud/* "$r"/tmp/* "$r"/var/tmp/*
	chroot "$r" dpkg-query -W -f '${Package} ${Version}\n' >"$out/packages.txt.new"
}

# mmdebstrap mounts /proc, /sys and /dev into the chroot; in a private mount namespace
# those mounts vanish with the process even when the build is killed.
unshare --mount --propagation private \
	mmdebstrap --variant=minbase --mode=root --format=directory \
	--aptopt='APT::Install-Recommends "false"' \
	--dpkgopt='path-exclude=/usr/share/man/*' \
	--dpkgopt='path-exclude=/usr/share/info/*' \
	--dpkgopt='path-exclude=/usr/share/doc/*' \
	--dpkgopt='path-include=/usr/share/doc/*/copyright' \
	--dpkgopt='path-exclude=/usr/share/locale/*' \
	--dpkgopt='path-include=/usr/share/locale/locale.alias' \
	--dpkgopt='path-exclude=/usr/share/lintian/*' \
	--include=systemd-sysv,udev,dbus,linux-image-amd64,initramfs-tools,openssh-server,cloud-init,ifupdown,isc-dhcp-client,iproute2,netbase,resolvconf,sudo,e2fsprogs \
	--setup-hook="$setup_hook" \
	"$suite" "$root" "$@"

customize "$root"

# No loop device or mount is needed: mke2fs copies the tree itself. A fixed UUID and hash
# seed keep the filesystem metadata the same between builds.
mkfs.ext4 -q -F -L root -U 6a3f1d2e-5b7c-4e8f-9a0b-1c2d3e4f5a6b \
	-E hash_seed=0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0,root_owner=0:0 \
	-d "$root" "$work/img.raw" 2G
qemu-img convert -c -O qcow2 "$work/img.raw" "$out/base.qcow2.new"

for f in base.qcow2 vmlinuz initrd.img packages.txt; do
	mv "$out/$f.new" "$out/$f"
done
(cd "$out" && sha256sum base.qcow2 vmlinuz initrd.img >SHA256SUMS)
