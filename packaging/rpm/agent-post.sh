# infoledger-agent %post: the service user, install-time enrollment settings (INFOLEDGER_SERVER,
# INFOLEDGER_ENROLL_TOKEN, as for the .deb), then enable; start only when configured.
getent group infoledger-agent >/dev/null || groupadd --system infoledger-agent
getent passwd infoledger-agent >/dev/null || useradd --system --gid infoledger-agent \
    --home-dir /var/lib/infoledger/agent --no-create-home --shell /sbin/nologin \
    --comment "infoledger agent" infoledger-agent
CONFIG=/etc/infoledger/agent.toml
if [ -n "$INFOLEDGER_SERVER" ]; then
    case "$INFOLEDGER_SERVER" in
        http://*|https://*) sed -i "s|^#\{0,1\} *server *=.*|server = \"$INFOLEDGER_SERVER\"|" "$CONFIG" ;;
        *) echo "infoledger-agent: INFOLEDGER_SERVER must start with http:// or https://" >&2 ;;
    esac
fi
if [ -n "$INFOLEDGER_ENROLL_TOKEN" ]; then
    (umask 077; printf '%s\n' "$INFOLEDGER_ENROLL_TOKEN" > /etc/infoledger/agent.token)
    chown infoledger-agent:infoledger-agent /etc/infoledger/agent.token
fi
chown root:infoledger-agent "$CONFIG"
chmod 0640 "$CONFIG"
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    if [ "$1" -eq 1 ]; then
        systemctl enable infoledger-agent.service >/dev/null 2>&1 || :
        [ -n "$INFOLEDGER_SERVER" ] && systemctl start infoledger-agent.service >/dev/null 2>&1 || :
    else
        systemctl try-restart infoledger-agent.service >/dev/null 2>&1 || :
    fi
fi
