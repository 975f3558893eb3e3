#!/usr/bin/env bash
# modernc.org/libc must be exactly the version modernc.org/sqlite was built
# against; a mismatch builds fine and crashes at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
sqlite=$(go list -m -f '{{.Version}}' modernc.org/sqlite)
have=$(go list -m -f '{{.Version}}' modernc.org/libc)
want=$(go mod graph | awk -v s="modernc.org/sqlite@$sqlite" '$1 == s && $2 ~ /^modernc.org\/libc@/ { sub(/.*@/, "", $2); print $2 }')
if [ "$have" != "$want" ]; then
	echo "modernc.org/libc is $have but modernc.org/sqlite $sqlite needs $want; pin it in go.mod" >&2
	exit 1
fi
echo "modernc.org/libc $have matches modernc.org/sqlite $sqlite"
