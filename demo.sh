#!/usr/bin/env bash
# Builds infoledger and runs the agent on a demo folder made from the example policy and ledger.
set -euo pipefail
cd "$(dirname "$0")"
cargo build --quiet --bins
exec cargo run --quiet --bin infoledger-demo
