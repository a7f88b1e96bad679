#!/bin/sh
# Builds the infoledger-server and infoledger-agent packages, .deb and .rpm, into
# target/packaging/. Installs the packaging tools it needs (cargo-deb, cargo-generate-rpm) when
# they are missing.
#
#   packaging/build.sh            # release build, then all four packages
#   packaging/build.sh --no-build # package binaries already in target/release
set -eu

cd "$(dirname "$0")/.."
OUT=target/packaging

build=yes
for arg in "$@"; do
    case "$arg" in
        --no-build) build=no ;;
        -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
        *) echo "build.sh: unknown argument $arg" >&2; exit 2 ;;
    esac
done

for tool in cargo-deb cargo-generate-rpm; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "build.sh: installing $tool" >&2
        cargo install --locked "$tool"
    fi
done

if [ "$build" = yes ]; then
    cargo build --release --locked -p infoledger-server -p infoledger-agent
fi

mkdir -p "$OUT"
for bin in server agent; do
    rm -rf "$OUT/$bin"
    "target/release/infoledger-$bin" generate-assets --out "$OUT/$bin" >/dev/null
done

for crate in infoledger-server infoledger-agent; do
    cargo deb --no-build -p "$crate" --output "$OUT/"
    cargo generate-rpm -p "${crate#infoledger-}" --output "$OUT/"
done

ls -1 "$OUT"/*.deb "$OUT"/*.rpm
