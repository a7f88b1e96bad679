#!/usr/bin/env bash
# Runs every test (all of them, also after a failure): the workspace's tests (unit, integration, end to end, browser), then, as root
# on a Debian-like machine, the package install test (packaging/test-install.sh), which installs
# the .deb packages on this machine and removes them again. Prints a closing total.
#
#   ./test.sh                               everything that can run here
#   INFOLEDGER_SKIP_INSTALL_TEST=1 ./test.sh  leave this machine's packages alone
set -uo pipefail
cd "$(dirname "$0")"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --all-targets --no-fail-fast 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
passed=$(grep -Eo 'test result: [A-Za-z]+\. [0-9]+ passed' "$log" | grep -Eo '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed;' "$log" | awk '{s+=$1} END {print s+0}')

install_test="not run"
if [ "${INFOLEDGER_SKIP_INSTALL_TEST:-0}" = 1 ]; then
    install_test="skipped (INFOLEDGER_SKIP_INSTALL_TEST=1)"
elif [ "$(id -u)" -ne 0 ] || ! command -v dpkg >/dev/null 2>&1; then
    install_test="not run: it needs root on a Debian-like machine (it installs the packages)"
elif packaging/test-install.sh; then
    install_test="passed"
else
    install_test="FAILED"
    status=1
fi

echo
echo "tests: $passed passed, $failed failed; package install test: $install_test"
exit "$status"
