# infoledger-server %post: the service user and config ownership; enable on first install only.
getent group infoledger >/dev/null || groupadd --system infoledger
getent passwd infoledger >/dev/null || useradd --system --gid infoledger \
    --home-dir /var/lib/infoledger/server --no-create-home --shell /sbin/nologin \
    --comment "infoledger collector" infoledger
chown root:infoledger /etc/infoledger/server.toml
chmod 0640 /etc/infoledger/server.toml
if [ "$1" -eq 1 ] && [ -d /run/systemd/system ]; then
    # Enabled, not started: the admin reviews server.toml first.
    systemctl enable infoledger-server.service >/dev/null 2>&1 || :
elif [ "$1" -gt 1 ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    systemctl try-restart infoledger-server.service >/dev/null 2>&1 || :
fi
