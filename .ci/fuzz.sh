#!/usr/bin/env bash
# Runs every Go fuzz target of the module for FUZZTIME each, one after the
# other (go test -fuzz takes one target of one package at a time), and stops
# at the first failure, naming the target and the crasher it wrote. Crashers
# land in <package>/testdata/fuzz/<target>/, where plain go test replays them.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-20s}
FUZZPARALLEL=${FUZZPARALLEL:-1}

log=$(mktemp)
trap 'rm -f "$log"' EXIT

# "dir name" lines, sorted so that runs are in the same order every time.
targets=$(grep -rEo --include='*_test.go' --exclude-dir=.git --exclude-dir=testdata \
	'^func Fuzz[A-Za-z0-9_]*\(' . |
	sed -E 's|^\./(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\($|\1 \2|; s|^\./[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\($|. \1|' |
	sort -u)
if [ -z "$targets" ]; then
	echo "fuzz: no fuzz targets found" >&2
	exit 1
fi

n=0
while read -r dir name; do
	n=$((n + 1))
	echo "=== fuzz $dir $name ($FUZZTIME)"
	if ! "$GO" test "./$dir" -run '^$' -fuzz "^$name\$" -fuzztime "$FUZZTIME" -parallel "$FUZZPARALLEL" 2>&1 | tee "$log"; then
		echo "FAIL: fuzz target $name in ./$dir" >&2
		crasher=$(sed -nE 's|.*Failing input written to (testdata/fuzz/[^ ]*).*|\1|p' "$log" | tail -n 1)
		if [ -n "$crasher" ]; then
			echo "crasher: $dir/$crasher (replay: $GO test ./$dir -run '^$name/$(basename "$crasher")\$')" >&2
		else
			echo "no crasher was written; see the output above" >&2
		fi
		exit 1
	fi
done <<<"$targets"
echo "fuzz: $n targets passed, $FUZZTIME each"
