#!/bin/sh
# Install or remove tocsin as a systemd service (what `make install` / `make uninstall` run).
#
#   systemd/install.sh install      venv in $INSTALL_DIR, unit in $UNIT_DIR, config and rules in
#                                   $CONFIG_DIR, `tocsin` linked into $BIN_DIR
#   systemd/install.sh config       only the configuration (if none yet) and the shipped rules
#   systemd/install.sh uninstall    stop and remove the service and the venv; keep config, state, logs
#   PURGE=1 systemd/install.sh uninstall    also remove config, state and logs
#   systemd/install.sh template     print tocsin@.service (what install writes beside tocsin.service)
#
# Environment: INSTALL_DIR (/opt/tocsin), CONFIG_DIR (/etc/tocsin), UNIT_DIR (/etc/systemd/system),
# BIN_DIR (/usr/local/bin),
# PYTHON (python3, 3.11 or newer, with the venv module), WHEELS (a directory of wheels: install
# from it alone, without a package index), SYSCTL_DIR (/etc/sysctl.d; empty: leave
# net.ipv4.ping_group_range alone, and ICMP probes fail where it is closed).
set -eu

INSTALL_DIR=${INSTALL_DIR:-/opt/tocsin}
CONFIG_DIR=${CONFIG_DIR:-/etc/tocsin}
UNIT_DIR=${UNIT_DIR:-/etc/systemd/system}
BIN_DIR=${BIN_DIR:-/usr/local/bin}
PYTHON=${PYTHON:-python3}
WHEELS=${WHEELS:-}
PURGE=${PURGE:-0}
SRC=$(cd "$(dirname "$0")/.." && pwd)
VENV=$INSTALL_DIR/venv
UNIT=$UNIT_DIR/tocsin.service
TEMPLATE=$UNIT_DIR/tocsin@.service
SYSCTL_DIR=${SYSCTL_DIR-/etc/sysctl.d}
SYSCTL=$SYSCTL_DIR/60-tocsin-ping.conf

say() { printf 'tocsin install: %s\n' "$*"; }
die() { printf 'tocsin install: error: %s\n' "$*" >&2; exit 1; }
# systemctl only where systemd is the running init (not in a chroot or an image build).
have_systemd() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }

# tocsin@.service, from tocsin.service: instance I runs shard I of the file's cluster.shards
# (port + I, state under /var/lib/tocsin/shard-I, log file tocsin-shardI.log). User=tocsin
# makes every instance the same dynamic user, so they share StateDirectory= and LogsDirectory=.
sharded_unit() {
    sed -e 's|^Description=tocsin |Description=tocsin shard %i: |' \
        -e 's|^\(ExecStart=.* run --config [^ ]*\)$|\1 --shard %i|' \
        -e 's|^DynamicUser=yes$|DynamicUser=yes\nUser=tocsin|' \
        -e 's|journalctl -u tocsin|journalctl -u tocsin@0|'
}

do_install() {
    [ "$(id -u)" = 0 ] || die "run as root (sudo make install)"
    "$PYTHON" -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
        || die "$PYTHON must be Python 3.11 or newer with the venv module (Debian: apt install python3-venv)"
    if [ ! -x "$VENV/bin/python" ]; then
        say "creating $VENV"
        mkdir -p "$INSTALL_DIR"
        "$PYTHON" -m venv "$VENV"
    fi
    if [ -n "$WHEELS" ]; then
        say "installing tocsin from $WHEELS"
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-index \
            --find-links "$WHEELS" --upgrade tocsin
    else
        say "installing tocsin from $SRC"
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "$SRC"
    fi
    # The unit runs with a read-only /opt: compile now rather than fail to write caches later.
    "$VENV/bin/python" -m compileall -q "$VENV/lib" >/dev/null 2>&1 || true

    say "installing $UNIT"
    mkdir -p "$UNIT_DIR"
    sed -e "s|/opt/tocsin|$INSTALL_DIR|g" -e "s|/etc/tocsin|$CONFIG_DIR|g" \
        "$SRC/systemd/tocsin.service" > "$UNIT.tmp"
    chmod 0644 "$UNIT.tmp"
    mv "$UNIT.tmp" "$UNIT"
    say "installing $TEMPLATE (one shard per instance: systemctl start tocsin@0 tocsin@1)"
    sharded_unit < "$UNIT" > "$TEMPLATE.tmp"
    chmod 0644 "$TEMPLATE.tmp"
    mv "$TEMPLATE.tmp" "$TEMPLATE"

    if [ -n "$SYSCTL_DIR" ]; then
        # ICMP probes use unprivileged ping sockets; the unit grants no capability.
        say "installing $SYSCTL (ping sockets for unprivileged processes, as upstream systemd has it)"
        mkdir -p "$SYSCTL_DIR"
        install -m 0644 "$SRC/systemd/60-tocsin-ping.conf" "$SYSCTL"
        if [ -w /proc/sys/net/ipv4/ping_group_range ]; then
            echo "0 2147483647" > /proc/sys/net/ipv4/ping_group_range
        fi
    fi

    install_config
    "$VENV/bin/tocsin" check config "$CONFIG_DIR/tocsin.yml"

    # On PATH for operators; the unit runs the venv's own.
    mkdir -p "$BIN_DIR"
    ln -sfn "$VENV/bin/tocsin" "$BIN_DIR/tocsin"
    say "linked $BIN_DIR/tocsin"

    if have_systemd; then
        systemctl daemon-reload
        say "done. Start it with: systemctl enable --now tocsin"
    else
        say "done (systemd is not running here: run 'systemctl daemon-reload' on the target system)"
    fi
}

# The configuration only if there is none (it is the operator's from then on); the shipped
# rules and their tests each only if absent, so an edited rule survives an upgrade.
install_config() {
    mkdir -p "$CONFIG_DIR/rules/tests"
    chmod 0755 "$CONFIG_DIR" "$CONFIG_DIR/rules" "$CONFIG_DIR/rules/tests"
    if [ -e "$CONFIG_DIR/tocsin.yml" ]; then
        say "keeping the existing $CONFIG_DIR/tocsin.yml"
    else
        say "installing $CONFIG_DIR/tocsin.yml"
        install -m 0644 "$SRC/etc/tocsin.systemd.yml" "$CONFIG_DIR/tocsin.yml"
    fi
    for file in "$SRC"/etc/rules/*.yml "$SRC"/etc/rules/tests/*.yml; do
        [ -e "$file" ] || continue
        dest=$CONFIG_DIR/rules/${file#"$SRC"/etc/rules/}
        if [ -e "$dest" ]; then
            say "keeping the existing $dest"
        else
            say "installing $dest"
            install -m 0644 "$file" "$dest"
        fi
    done
}

do_uninstall() {
    [ "$(id -u)" = 0 ] || die "run as root (sudo make uninstall)"
    if have_systemd && [ -e "$UNIT" ]; then
        systemctl disable --now tocsin.service 2>/dev/null || true
        systemctl disable --now 'tocsin@*.service' 2>/dev/null || true
    fi
    rm -f "$UNIT" "$TEMPLATE"
    if [ -n "$SYSCTL_DIR" ]; then rm -f "$SYSCTL"; fi  # the running kernel keeps the range until the next boot
    if [ -L "$BIN_DIR/tocsin" ] && [ "$(readlink "$BIN_DIR/tocsin")" = "$VENV/bin/tocsin" ]; then
        rm -f "$BIN_DIR/tocsin"
    fi
    if have_systemd; then systemctl daemon-reload; fi
    rm -rf "$VENV"
    rmdir "$INSTALL_DIR" 2>/dev/null || true
    if [ "$PURGE" = 1 ]; then
        # DynamicUser= keeps state and logs under /var/{lib,log}/private, linked from /var/{lib,log}.
        rm -rf "$CONFIG_DIR" /var/lib/tocsin /var/lib/private/tocsin /var/log/tocsin /var/log/private/tocsin
        say "removed tocsin, its configuration, state and logs"
    else
        say "removed tocsin; kept $CONFIG_DIR, /var/lib/tocsin and /var/log/tocsin (PURGE=1 removes them)"
    fi
}

case "${1:-}" in
    install) do_install ;;
    config) install_config ;;
    uninstall) do_uninstall ;;
    template) sharded_unit < "$SRC/systemd/tocsin.service" ;;
    *) sed -n '2,14p' "$0"; exit 2 ;;
esac
