#!/usr/bin/env bash
# Fails when the committed *_templ.go files differ from what templ generates.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r views "$tmp/views"
if ! out=$(go tool templ generate -path "$tmp/views" 2>&1); then
	echo "views: templ generate failed:" >&2
	echo "$out" >&2
	exit 1
fi
if ! diff -r views "$tmp/views" >/dev/null; then
	echo "views: generated *_templ.go files are out of date; run 'make generate' and commit them" >&2
	diff -r views "$tmp/views" | head -20 >&2
	exit 1
fi
echo "views: generated templ code is in sync"
