#!/usr/bin/env bash
# Prepares this machine for the test lab: installs the Debian packages in
# .ci/packages.txt that are missing (PostgreSQL too when no initdb is found)
# and unpacks a Debian kernel for the KVM probe test. make test runs it
# first; it changes nothing when everything is in place.
#
# As root on Debian it installs what is missing. Otherwise it names the
# command to run and exits 0 so that the suite still runs (the tests that
# need a missing tool skip and say so), except under CI, where a missing
# package is an error.
set -euo pipefail
cd "$(dirname "$0")/.."

kernel_dir=/var/cache/fibrix/kernel

mapfile -t packages < <(sed -e 's/#.*//' .ci/packages.txt | tr -s ' \t' '\n' | sed '/^$/d')
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
	packages+=(postgresql)
fi

missing=()
if command -v dpkg-query >/dev/null; then
	for p in "${packages[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
fi
need_kernel=false
ls "$kernel_dir"/vmlinuz-* >/dev/null 2>&1 || ls /boot/vmlinuz-* >/dev/null 2>&1 || need_kernel=true

can_install=false
[ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && can_install=true

if ! command -v dpkg-query >/dev/null; then
	echo "lab-setup: not a Debian system; install the equivalents of .ci/packages.txt yourself." >&2
	[ -z "${CI:-}" ] || exit 1
	exit 0
fi

if [ ${#missing[@]} -eq 0 ] && ! $need_kernel; then
	exit 0
fi

if ! $can_install; then
	{
		[ ${#missing[@]} -eq 0 ] || echo "lab-setup: missing Debian packages: ${missing[*]}"
		$need_kernel && echo "lab-setup: no kernel for the KVM probe test in $kernel_dir or /boot"
		echo "lab-setup: run as root:  sudo $PWD/.ci/lab-setup.sh"
		echo "lab-setup: until then the tests that need them skip and say why."
	} >&2
	[ -z "${CI:-}" ] || exit 1
	exit 0
fi

if [ ${#missing[@]} -gt 0 ]; then
	echo "lab-setup: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# Packages must not start their own daemons: the tests run private
	# instances on their own ports.
	created_policy=false
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
		created_policy=true
		trap 'rm -f /usr/sbin/policy-rc.d' EXIT
	fi
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}"
	$created_policy && rm -f /usr/sbin/policy-rc.d
	trap - EXIT
fi

if $need_kernel; then
	# A Debian kernel for the KVM probe boot, unpacked rather than installed.
	pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/ { print $2; exit }')
	[ -n "$pkg" ] || { apt-get update -qq; pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/ { print $2; exit }'); }
	tmp=$(mktemp -d)
	(cd "$tmp" && apt-get -o APT::Sandbox::User=root download -qq "$pkg" && dpkg-deb -x ./*.deb x)
	mkdir -p "$kernel_dir" && cp "$tmp"/x/boot/vmlinuz-* "$kernel_dir"/
	rm -rf "$tmp"
	echo "lab-setup: test kernel in $kernel_dir"
fi
