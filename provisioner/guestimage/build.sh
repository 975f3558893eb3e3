#!/bin/sh
# Builds the Fibrix Cloud guest image offline from Debian packages:
#   OUTPUT/base.qcow2    ext4 root filesystem, no partition table (root=/dev/vda or LABEL=root)
#   OUTPUT/vmlinuz       kernel for direct kernel boot
#   OUTPUT/initrd.img    matching initramfs (virtio, AHCI and NVMe disk drivers)
#   OUTPUT/metal.img.gz  gzip of a raw disk for bare-metal machines: MBR with GRUB for BIOS,
#                        one partition from 1 MiB with the same system plus kernel, initrd,
#                        /boot/grub/grub.cfg, server drivers and a KVM host's libvirt and
#                        QEMU; grown to the disk on first boot
#   OUTPUT/packages.txt  installed packages and versions of the VM system
#   OUTPUT/metal-packages.txt  the same for the bare-metal system
#   OUTPUT/SHA256SUMS
# Usage: build.sh OUTPUT   (as root; needs mmdebstrap e2fsprogs qemu-utils gzip)
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

# The initramfs carries only the drivers that find the root disk of a virtio VM or of a
# machine with a SATA (AHCI) or NVMe disk: a smaller initrd unpacks noticeably faster
# under TCG than MODULES=most (36 MB).
setup_hook='mkdir -p "$1/etc/initramfs-tools/conf.d" "$1/usr/share/initramfs-tools/modules.d" &&
printf "MODULES=list\nCOMPRESS=gzip\n" >"$1/etc/initramfs-tools/conf.d/fibrix.conf" &&
printf "%s\n" virtio_pci virtio_blk virtio_scsi sd_mod virtio_net virtio_console ext4 crc32c_generic \
	ahci nvme >"$1/usr/share/initramfs-tools/modules.d/fibrix"'

# GRUB for the metal image: grub-mkimage makes core.img inside the chroot (grub-install
# needs a disk device; there is none), then GRUB's packages are purged again so the
# image's package set stays what it was. core.img finds its configuration on the first
# partition of the BIOS boot disk (hd0): biosdisk reads it through int 13h whatever the
# controller is. The hook leaves core.img and boot.img in $FIBRIX_GRUB.
FIBRIX_GRUB=$work/grub
export FIBRIX_GRUB
mkdir "$FIBRIX_GRUB"
grub_hook='set -eu
chroot "$1" dpkg-query -W -f "\${Package} \${Version}\n" >"$FIBRIX_GRUB/packages"
chroot "$1" apt-get install -y -q grub-pc-bin
chroot "$1" grub-mkimage -O i386-pc -o /tmp/core.img -p "(hd0,msdos1)/boot/grub" \
	biosdisk part_msdos ext2 normal linux search search_label configfile echo test serial terminal
mv "$1/tmp/core.img" "$FIBRIX_GRUB/core.img"
cp "$1/usr/lib/grub/i386-pc/boot.img" "$FIBRIX_GRUB/boot.img"
added=$(chroot "$1" dpkg-query -W -f "\${Package} \${Version}\n" | grep -vxF -f "$FIBRIX_GRUB/packages" | cut -d" " -f1)
chroot "$1" apt-get purge -y -q $added
chroot "$1" dpkg-query -W -f "\${Package} \${Version}\n" | cmp -s - "$FIBRIX_GRUB/packages" || {
	echo "build.sh: purging GRUB did not restore the package set" >&2
	exit 1
}'

# The bare-metal system is also a KVM host ("deploy as a KVM host" registers it at
# qemu+ssh://debian@<address>/system): libvirtd with its QEMU driver and QEMU itself. The
# hook only downloads them, while the chroot still has apt's lists; kvm_install puts them
# into a copy of the finished tree that becomes the metal system, so the VM system never
# held them (a purge would leave their users, groups and state directories behind).
kvm_packages='libvirt-daemon-system libvirt-daemon-driver-qemu qemu-system-x86'
FIBRIX_KVM=$work/kvm
export FIBRIX_KVM
mkdir "$FIBRIX_KVM"
kvm_hook='set -eu
mkdir -p "$1/tmp/kvm/partial"
chroot "$1" apt-get install -y -q --download-only -o Dir::Cache::Archives=/tmp/kvm/ '"$kvm_packages"'
mv "$1"/tmp/kvm/*.deb "$FIBRIX_KVM/"
rm -rf "$1/tmp/kvm"'

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
# no boot loader package: VMs boot the kernel beside their disk directly, and the
# GRUB of the bare-metal disk is written into its boot sectors when it is built
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
	clean_tree "$r"
	chroot "$r" dpkg-query -W -f '${Package} ${Version}\n' >"$out/packages.txt.new"
	# Kernel and initrd are shipped beside the VM disk for direct kernel boot.
	kver=$(ls "$r/lib/modules")
	cp "$r/boot/vmlinuz-$kver" "$out/vmlinuz.new"
	cp "$r/boot/initrd.img-$kver" "$out/initrd.img.new"
}

# clean_tree removes what differs per build and is useless in a fresh system: the
# machine id (systemd makes a new one on first boot when the file is empty), apt's lists
# and caches, logs and temporary files.
clean_tree() {
	r=$1
	: >"$r/etc/machine-id"
	rm -f "$r/var/lib/dbus/machine-id" "$r/var/cache/ldconfig/aux-cache"
	rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/* "$r"/var/cache/debconf/*-old \
		"$r"/var/log/*.log "$r"/var/log/apt/* "$r"/var/lib/cloud/* "$r"/tmp/* "$r"/var/tmp/*
}

# chroot_run runs a command in the tree $1 the way mmdebstrap runs its hooks: with fresh
# proc, sysfs and devpts mounted in a private mount namespace (they vanish with the
# process), a policy-rc.d that keeps package scripts from starting services, and a
# start-stop-daemon that does nothing, for scripts that start or signal daemons directly
# (the chroot's /proc shows the build host's processes).
chroot_run() {
	r=$1
	shift
	printf '#!/bin/sh\nexit 101\n' >"$r/usr/sbin/policy-rc.d"
	chmod 755 "$r/usr/sbin/policy-rc.d"
	mv "$r/sbin/start-stop-daemon" "$r/sbin/start-stop-daemon.REAL"
	printf '#!/bin/sh\necho "build.sh: start-stop-daemon $* not run in the image build" >&2\n' \
		>"$r/sbin/start-stop-daemon"
	chmod 755 "$r/sbin/start-stop-daemon"
	unshare --mount --propagation private sh -eu -c '
		r=$1
		shift
		mount -t proc proc "$r/proc"
		mount -t sysfs sysfs "$r/sys"
		mount -t devpts -o noexec,nosuid,gid=5,mode=620,ptmxmode=666 devpts "$r/dev/pts"
		exec chroot "$r" "$@"' sh "$r" "$@"
	mv "$r/sbin/start-stop-daemon.REAL" "$r/sbin/start-stop-daemon"
	rm "$r/usr/sbin/policy-rc.d"
}

# kvm_install installs the packages kvm_hook downloaded into the tree $1 and checks that
# exactly those were added.
kvm_install() {
	r=$1
	chroot "$r" dpkg-query -W -f '${Package}\n' | sort >"$work/kvm.before"
	for deb in "$FIBRIX_KVM"/*.deb; do
		dpkg-deb -f "$deb" Package
	done | sort >"$work/kvm.debs"
	mkdir "$r/tmp/kvm"
	cp "$FIBRIX_KVM"/*.deb "$r/tmp/kvm/"
	chroot_run "$r" sh -c 'apt-get install -y -q --no-install-recommends /tmp/kvm/*.deb'
	rm -rf "$r/tmp/kvm"
	chroot "$r" dpkg-query -W -f '${Package}\n' | sort >"$work/kvm.after"
	sort -m "$work/kvm.before" "$work/kvm.debs" | cmp -s - "$work/kvm.after" || {
		echo "build.sh: installing the KVM packages changed other packages than the downloaded ones" >&2
		exit 1
	}
}

# kvm_host configures the tree $1 as the KVM host the provisioner registers: it logs in
# as the default user "debian" and talks to libvirtd's socket through SSH (a
# direct-streamlocal channel, which sshd allows unless configured otherwise), then needs
# the storage pool "default" active for VM disks.
kvm_host() {
	r=$1
	# cloud-init creates the default user on first boot. It merges cloud.cfg.d into
	# cloud.cfg key by key but takes a list whole, so groups repeats Debian's list with
	# libvirt added (libvirt's polkit rule lets that group manage qemu:///system); the
	# rest is Debian's default_user entry of cloud-init 22.4 too, so the entry stands on
	# its own.
	cat >"$r/etc/cloud/cloud.cfg.d/91-fibrix-kvm-host.cfg" <<'EOF'
# Fibrix Cloud bare-metal image: a KVM host managed over qemu+ssh://debian@<host>/system
system_info:
  default_user:
    name: debian
    lock_passwd: True
    gecos: Debian
    groups: [adm, audio, cdrom, dialout, dip, floppy, netdev, plugdev, sudo, video, libvirt]
    sudo: ["ALL=(ALL) NOPASSWD:ALL"]
    shell: /bin/bash
EOF
	# The pool "default" as virsh pool-define and pool-autostart would leave it. Its
	# UUID is the same on every host; libvirt keeps pool UUIDs unique per host only.
	mkdir -p "$r/etc/libvirt/storage/autostart" "$r/var/lib/libvirt/images"
	cat >"$r/etc/libvirt/storage/default.xml" <<'EOF'
<!--
WARNING: THIS IS AN AUTO-GENERATED FILE. CHANGES TO IT ARE LIKELY TO BE
OVERWRITTEN AND LOST. Changes to this xml configuration should be made using:
  virsh pool-edit default
or other application using the libvirt API.
-->

<pool type='dir'>
  <name>default</name>
  <uuid>65611c0f-7b8c-4d5d-8a38-49c0c2ef8f25</uuid>
  <capacity unit='bytes'>0</capacity>
  <allocation unit='bytes'>0</allocation>
  <available unit='bytes'>0</available>
  <source>
  </source>
  <target>
    <path>/var/lib/libvirt/images</path>
  </target>
</pool>
EOF
	chmod 600 "$r/etc/libvirt/storage/default.xml"
	ln -sfn /etc/libvirt/storage/default.xml "$r/etc/libvirt/storage/autostart/default.xml"
	# VMs attach to a host bridge; libvirt's NAT network "default" (192.168.122.0/24,
	# iptables rules, dnsmasq, which is not installed) stays defined but is not started.
	rm -f "$r/etc/libvirt/qemu/networks/autostart/default.xml"
	# The package enables libvirtd to start at boot and, after it exits when idle
	# (--timeout 120), again on its sockets' first connection.
	for unit in libvirtd.service libvirtd.socket libvirtd-ro.socket libvirtd-admin.socket virtlogd.socket; do
		state=$(chroot "$r" systemctl is-enabled "$unit" 2>&1) || true
		[ "$state" = enabled ] || {
			echo "build.sh: $unit is $state in the metal system, want enabled" >&2
			exit 1
		}
	done
	if grep -Eiqs '^[[:space:]]*(AllowStreamLocalForwarding[[:space:]]+(no|remote)|DisableForwarding[[:space:]]+yes)' \
		"$r/etc/ssh/sshd_config" "$r"/etc/ssh/sshd_config.d/*.conf; then
		echo "build.sh: sshd_config forbids streamlocal forwarding (libvirt over qemu+ssh)" >&2
		exit 1
	fi
}

# strip_modules removes the kernel modules under the given directories of
# /lib/modules/$kver/kernel and updates the module index.
strip_modules() {
	r=$1
	shift
	for d in "$@"; do
		rm -rf "${r:?}/lib/modules/$kver/kernel/$d"
	done
	chroot "$r" depmod -a "$kver"
}

# Drivers of desktops and gadgets, which neither servers nor VMs need.
desktop_modules='drivers/gpu drivers/media drivers/net/wireless sound drivers/bluetooth
	net/bluetooth net/wireless net/mac80211 drivers/staging drivers/iio drivers/isdn
	drivers/nfc net/nfc drivers/net/can drivers/usb/serial drivers/usb/gadget drivers/mtd
	drivers/atm drivers/memstick drivers/mmc drivers/firewire drivers/pcmcia drivers/thunderbolt'

# metal_tree turns a copy of the tree into the bare-metal system: a KVM host. The kernel
# and initrd stay in /boot (the /vmlinuz and /initrd.img links that kernel upgrades move
# point at them), and GRUB boots them with the console on both screen and first serial
# port. Servers keep the drivers of their NICs, storage controllers and sensors.
metal_tree() {
	r=$1
	rm -f "$r"/boot/System.map-* "$r/vmlinuz.old" "$r/initrd.img.old"
	# shellcheck disable=SC2086
	strip_modules "$r" $desktop_modules
	kvm_install "$r"
	kvm_host "$r"
	clean_tree "$r"
	chroot "$r" dpkg-query -W -f '${Package} ${Version}\n' >"$out/metal-packages.txt.new"
	mkdir -p "$r/boot/grub"
	cat >"$r/boot/grub/grub.cfg" <<'GRUB'
# Fibrix Cloud bare-metal image
serial --unit=0 --speed=115200
terminal_input console serial
terminal_output console serial
set timeout=0
set default=0
menuentry 'Debian GNU/Linux' {
	linux /vmlinuz root=LABEL=root ro console=tty0 console=ttyS0,115200
	initrd /initrd.img
}
GRUB
}

# vm_tree turns the tree into the VM system: no kernel inside (it is shipped beside the
# disk for direct kernel boot), no boot loader, no hypervisor, and none of the drivers
# that a virtio VM never loads (hardware NICs, sensors, storage controllers).
vm_tree() {
	r=$1
	rm -f "$r"/boot/vmlinuz-* "$r"/boot/initrd.img-* "$r"/boot/System.map-* "$r"/vmlinuz* "$r"/initrd.img*
	# shellcheck disable=SC2086
	strip_modules "$r" $desktop_modules drivers/net/ethernet drivers/infiniband drivers/hwmon \
		drivers/net/usb drivers/net/fddi drivers/scsi/qla2xxx drivers/scsi/lpfc drivers/scsi/mpt3sas \
		drivers/scsi/qedf drivers/scsi/bfa drivers/scsi/be2iscsi
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
	--include=systemd-sysv,udev,dbus,linux-image-amd64,initramfs-tools,openssh-server,cloud-init,ifupdown,isc-dhcp-client,iproute2,netbase,resolvconf,sudo,e2fsprogs,cloud-guest-utils,qemu-guest-agent \
	--setup-hook="$setup_hook" \
	--customize-hook="$grub_hook" \
	--customize-hook="$kvm_hook" \
	"$suite" "$root" "$@"

customize "$root"

# The metal system is a copy of the tree, so that what it adds never reaches the VM
# system. No loop device or mount is needed: mke2fs copies a tree itself, here into the
# metal disk at the partition's offset. Fixed UUIDs, hash seeds and disk id keep the
# metadata the same between builds. The metal filesystem holds its content plus a
# quarter (at least 128 MiB) so it writes fast; cloud-init grows it to the disk on first
# boot. -T default: a small filesystem would otherwise get 1 KiB blocks.
metal=$work/metal
cp -a "$root" "$metal"
metal_tree "$metal"
used=$(du -s --block-size=1M "$metal" | cut -f1)
margin=$((used / 4))
[ "$margin" -ge 128 ] || margin=128
part_mib=$((used + margin))
mkfs.ext4 -q -F -T default -L root -U 3c1b7f52-8d4e-4a6b-9f0e-2d5c8a7b6e14 \
	-E hash_seed=7e6d5c4b-3a29-4817-a6f5-e4d3c2b1a098,root_owner=0:0,offset=1048576 \
	-d "$metal" "$work/metal.raw" "${part_mib}M"

# The partition table: sfdisk of the image's own fdisk package, through a hard link into
# the tree (no loop device). One bootable Linux partition from LBA 2048 to the end.
ln "$work/metal.raw" "$metal/metal.raw"
printf '%s\n' 'label: dos' 'label-id: 0x6642e1c0' 'start=2048, type=83, bootable' |
	chroot "$metal" sfdisk -q --wipe never --wipe-partitions never /metal.raw
rm "$metal/metal.raw"
rm -rf --one-file-system "$metal"

vm_tree "$root"
mkfs.ext4 -q -F -L root -U 6a3f1d2e-5b7c-4e8f-9a0b-1c2d3e4f5a6b \
	-E hash_seed=0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0,root_owner=0:0 \
	-d "$root" "$work/img.raw" 2G

# GRUB as grub-bios-setup would write it: boot.img's code (the first 440 bytes; the disk
# id and partition table after it stay), with its drive check replaced by NOPs as for
# any hard disk, then core.img from LBA 1, whose first sector reads the rest by the
# blocklist grub-mkimage filled in (from LBA 2). boot.img loads LBA 1 by default.
[ "$(od -An -tx1 -j102 -N1 "$FIBRIX_GRUB/boot.img")" = " eb" ] || {
	echo "build.sh: boot.img has no drive check jump at 0x66" >&2
	exit 1
}
core_sectors=$(( ($(stat -c %s "$FIBRIX_GRUB/core.img") + 511) / 512 ))
[ "$core_sectors" -lt 2048 ] || { echo "build.sh: core.img ($core_sectors sectors) does not fit before LBA 2048" >&2; exit 1; }
dd if="$FIBRIX_GRUB/boot.img" of="$work/metal.raw" bs=440 count=1 conv=notrunc status=none
printf '\220\220' | dd of="$work/metal.raw" bs=1 seek=102 conv=notrunc status=none
dd if="$FIBRIX_GRUB/core.img" of="$work/metal.raw" bs=512 seek=1 conv=notrunc status=none

# The two compressions run side by side; gzip -1 takes no longer than the qcow2 (-6
# would make the metal image a tenth smaller in twice the time).
gzip -1 -n -c "$work/metal.raw" >"$out/metal.img.gz.new" &
gz=$!
qemu-img convert -c -O qcow2 "$work/img.raw" "$out/base.qcow2.new" || {
	kill "$gz"
	exit 1
}
wait "$gz"

for f in base.qcow2 vmlinuz initrd.img metal.img.gz packages.txt metal-packages.txt; do
	mv "$out/$f.new" "$out/$f"
done
(cd "$out" && sha256sum base.qcow2 vmlinuz initrd.img metal.img.gz >SHA256SUMS)
