#!/bin/sh
# The package install test: builds the .deb and .rpm packages, checks them (lintian, rpm -qpi/-qpl),
# installs the .debs on this machine, starts the installed collector and agent the way their
# units would (as their users, the agent with only CAP_DAC_READ_SEARCH), sees a violation from a
# watched folder arrive, verifies the units, upgrades over an edited conffile, then removes and
# purges. Needs root on a Debian-like system; it changes this machine (packages, users, /etc,
# /var/lib), so it is meant for CI and throw-away machines.
#
#   packaging/test-install.sh            # build, then test
#   packaging/test-install.sh --no-build # test the packages already in target/packaging
set -eu

cd "$(dirname "$0")/.."
OUT=target/packaging
STEP=""
fail() { echo "test-install: FAILED at '$STEP': $*" >&2; exit 1; }
step() { STEP="$1"; echo "== $1"; }

[ "$(id -u)" -eq 0 ] || fail "must run as root (it installs packages)"
command -v dpkg >/dev/null || fail "needs dpkg (a Debian-like system)"
for tool in lintian rpm setpriv runuser curl systemd-analyze; do
    command -v "$tool" >/dev/null || fail "missing $tool (apt-get install lintian rpm util-linux curl systemd)"
done

if [ "${1:-}" != "--no-build" ]; then
    step "build packages"
    packaging/build.sh
fi
SERVER_DEB=$(ls "$OUT"/infoledger-server_*.deb)
AGENT_DEB=$(ls "$OUT"/infoledger-agent_*.deb)
SERVER_RPM=$(ls "$OUT"/infoledger-server-*.rpm)
AGENT_RPM=$(ls "$OUT"/infoledger-agent-*.rpm)

PIDS=""
WORK=$(mktemp -d /var/tmp/infoledger-install-test.XXXXXX)
cleanup() {
    for pid in $PIDS; do kill "$pid" 2>/dev/null || true; done
    sleep 1
    for pid in $PIDS; do kill -9 "$pid" 2>/dev/null || true; done
    dpkg -P infoledger-agent infoledger-server >/dev/null 2>&1 || true
    rm -rf "$WORK" /srv/infoledger-install-test
}
trap cleanup EXIT

step "lintian reports no errors"
lintian --fail-on error "$SERVER_DEB" "$AGENT_DEB" || fail "lintian found errors"

step "rpm metadata and file lists"
for rpmfile in "$SERVER_RPM" "$AGENT_RPM"; do
    rpm -qpi "$rpmfile" >"$WORK/rpm-info" 2>/dev/null
    grep -q "^License *: Apache-2.0" "$WORK/rpm-info" || fail "$rpmfile: license missing"
done
rpm -qpl "$SERVER_RPM" 2>/dev/null >"$WORK/server-rpm-files"
for f in /usr/bin/infoledger-server /etc/infoledger/server.toml \
    /usr/lib/systemd/system/infoledger-server.service /usr/share/man/man1/infoledger-server.1 \
    /usr/share/infoledger/examples/policy.toml /usr/share/bash-completion/completions/infoledger-server; do
    grep -qx "$f" "$WORK/server-rpm-files" || fail "server rpm lacks $f"
done
rpm -qpl "$AGENT_RPM" 2>/dev/null >"$WORK/agent-rpm-files"
for f in /usr/bin/infoledger-agent /etc/infoledger/agent.toml \
    /usr/lib/systemd/system/infoledger-agent.service /usr/share/man/man1/infoledger-agent.1; do
    grep -qx "$f" "$WORK/agent-rpm-files" || fail "agent rpm lacks $f"
done
rpm -qp --configfiles "$SERVER_RPM" 2>/dev/null | grep -qx /etc/infoledger/server.toml \
    || fail "server.toml is not a config file in the rpm"

step "install the collector package"
DEBIAN_FRONTEND=noninteractive dpkg -i "$SERVER_DEB" >"$WORK/dpkg.log" 2>&1 || { cat "$WORK/dpkg.log"; fail "dpkg -i"; }
getent passwd infoledger >/dev/null || fail "user infoledger not created"
[ "$(stat -c '%U:%G %a' /etc/infoledger/server.toml)" = "root:infoledger 640" ] \
    || fail "server.toml ownership/mode: $(stat -c '%U:%G %a' /etc/infoledger/server.toml)"
dpkg-query -W -f='${Conffiles}\n' infoledger-server | grep -q /etc/infoledger/server.toml \
    || fail "server.toml is not a conffile"
for f in /usr/bin/infoledger-server /lib/systemd/system/infoledger-server.service \
    /usr/share/man/man1/infoledger-server.1.gz /usr/share/infoledger/examples/ledger.toml \
    /usr/share/doc/infoledger-server/copyright; do
    [ -e "$f" ] || fail "missing $f"
done
systemctl is-enabled infoledger-server.service 2>/dev/null | grep -q enabled \
    || [ -L /etc/systemd/system/multi-user.target.wants/infoledger-server.service ] \
    || fail "the collector's unit is not enabled"

step "validate the installed collector config as its user"
# What systemd's StateDirectory= would create.
install -d -o infoledger -g infoledger -m 0700 /var/lib/infoledger/server
runuser -u infoledger -- infoledger-server validate --config /etc/infoledger/server.toml \
    || fail "server validate"

step "start the installed collector as its user"
sed -i 's|^listen = .*|listen = "127.0.0.1:18610"|' /etc/infoledger/server.toml
runuser -u infoledger -- infoledger-server serve --config /etc/infoledger/server.toml \
    >"$WORK/server.log" 2>&1 &
PIDS="$PIDS $!"
for _ in $(seq 1 100); do
    grep -q "listening on" "$WORK/server.log" && break
    sleep 0.2
done
grep -q "listening on 127.0.0.1:18610" "$WORK/server.log" || { cat "$WORK/server.log"; fail "collector did not start"; }
API=http://127.0.0.1:18610

step "import policy and ledger, issue tokens"
mkdir -p /srv/infoledger-install-test/projects/acme /srv/infoledger-install-test/Downloads
sed 's|"/srv/projects/acme/\*\*"|"/srv/infoledger-install-test/projects/acme/**"|' \
    /usr/share/infoledger/examples/ledger.toml >"$WORK/ledger.toml"
chmod 644 "$WORK/ledger.toml"
chmod 755 "$WORK"
runuser -u infoledger -- infoledger-server policy import --config /etc/infoledger/server.toml \
    /usr/share/infoledger/examples/policy.toml || fail "policy import"
runuser -u infoledger -- infoledger-server ledger import --config /etc/infoledger/server.toml \
    "$WORK/ledger.toml" || fail "ledger import"
ENROLL=$(runuser -u infoledger -- infoledger-server enroll-token create --config /etc/infoledger/server.toml)
ADMIN=$(runuser -u infoledger -- infoledger-server token create --config /etc/infoledger/server.toml \
    --name install-test --role admin)

step "install the agent package with install-time enrollment"
INFOLEDGER_SERVER=$API INFOLEDGER_ENROLL_TOKEN=$ENROLL DEBIAN_FRONTEND=noninteractive \
    dpkg -i "$AGENT_DEB" >"$WORK/dpkg.log" 2>&1 || { cat "$WORK/dpkg.log"; fail "dpkg -i agent"; }
getent passwd infoledger-agent >/dev/null || fail "user infoledger-agent not created"
grep -qx "server = \"$API\"" /etc/infoledger/agent.toml || fail "server not written into agent.toml"
[ "$(stat -c '%U %a' /etc/infoledger/agent.token)" = "infoledger-agent 600" ] \
    || fail "agent.token ownership/mode: $(stat -c '%U %a' /etc/infoledger/agent.token)"
dpkg-query -W -f='${Conffiles}\n' infoledger-agent | grep -q /etc/infoledger/agent.toml \
    || fail "agent.toml is not a conffile"
# Watch only the test folder (the installed default watches /home and /srv).
sed -i 's|^watch = .*|watch = ["/srv/infoledger-install-test"]|' /etc/infoledger/agent.toml
install -d -o infoledger-agent -g infoledger-agent -m 0700 /var/lib/infoledger/agent
install -d -o infoledger-agent -g infoledger-agent -m 0755 /run/infoledger-agent
setpriv --reuid=infoledger-agent --regid=infoledger-agent --init-groups \
    --inh-caps=-all,+dac_read_search --ambient-caps=-all,+dac_read_search --bounding-set=-all,+dac_read_search \
    -- infoledger-agent validate --config /etc/infoledger/agent.toml || fail "agent validate"

step "a labeled file in a watched folder arrives as a violation"
# Owned by root, mode 0600: only CAP_DAC_READ_SEARCH lets the agent read it.
printf 'id,name\n1,ACME\n' >/srv/infoledger-install-test/Downloads/customers.csv
chmod 600 /srv/infoledger-install-test/Downloads/customers.csv
setfattr -n user.infoledger.label -v confidential /srv/infoledger-install-test/Downloads/customers.csv 2>/dev/null \
    || python3 -c "import os; os.setxattr('/srv/infoledger-install-test/Downloads/customers.csv', 'user.infoledger.label', b'confidential')"
setpriv --reuid=infoledger-agent --regid=infoledger-agent --init-groups \
    --inh-caps=-all,+dac_read_search --ambient-caps=-all,+dac_read_search --bounding-set=-all,+dac_read_search \
    -- infoledger-agent run --config /etc/infoledger/agent.toml >"$WORK/agent.log" 2>&1 &
PIDS="$PIDS $!"
found=""
for _ in $(seq 1 150); do
    if curl -fsS -H "Authorization: Bearer $ADMIN" "$API/api/v1/violations?status=open&kind=misplaced" \
        | grep -q '/srv/infoledger-install-test/Downloads/customers.csv'; then
        found=yes
        break
    fi
    sleep 0.2
done
[ -n "$found" ] || { cat "$WORK/agent.log" "$WORK/server.log"; fail "violation did not arrive"; }

step "systemd-analyze verify the installed units"
systemd-analyze verify --man=no /lib/systemd/system/infoledger-server.service \
    /lib/systemd/system/infoledger-agent.service || fail "systemd-analyze verify"

step "upgrade keeps an edited conffile"
for pid in $PIDS; do kill "$pid" 2>/dev/null || true; done
PIDS=""
sleep 1
echo "# edited by the admin" >>/etc/infoledger/server.toml
DEBIAN_FRONTEND=noninteractive dpkg -i --force-confold "$SERVER_DEB" >"$WORK/dpkg.log" 2>&1 \
    || { cat "$WORK/dpkg.log"; fail "reinstall"; }
grep -q "^# edited by the admin" /etc/infoledger/server.toml || fail "the edit was lost on upgrade"

step "remove keeps configuration and data; purge removes them"
dpkg -r infoledger-server infoledger-agent >/dev/null
[ ! -e /usr/bin/infoledger-server ] && [ ! -e /usr/bin/infoledger-agent ] || fail "binaries left after remove"
[ -e /etc/infoledger/server.toml ] || fail "remove must keep conffiles"
[ -e /var/lib/infoledger/server/collector.db ] || fail "remove must keep the database"
dpkg -P infoledger-server infoledger-agent >/dev/null
for f in /etc/infoledger/server.toml /etc/infoledger/agent.toml /etc/infoledger/agent.token \
    /var/lib/infoledger/server /var/lib/infoledger/agent \
    /lib/systemd/system/infoledger-server.service /lib/systemd/system/infoledger-agent.service; do
    [ ! -e "$f" ] || fail "$f left after purge"
done

echo "test-install: all steps passed"
