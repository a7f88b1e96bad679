# infoledger-agent %postun: reload unit files; RPM has no purge, state stays in /var/lib/infoledger.
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
fi
