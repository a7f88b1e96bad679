#!/usr/bin/env bash
# Builds infoledger, then starts a collector and an agent watching a demo folder made from the
# example policy and ledger (see README, "Quick start"). `./demo.sh --check` exits once the demo
# works end to end.
set -euo pipefail
cd "$(dirname "$0")"
cargo build --quiet --bins
exec cargo run --quiet --bin infoledger-demo -- "$@"
