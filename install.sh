#!/bin/sh
# Install edgecollab on a Debian machine as root: system packages, a virtual environment
# in .venv with the pinned Python dependencies, and the `edgecollab` command on PATH.
# Idempotent: running it again changes nothing that is already in place.
set -eu
cd "$(dirname "$0")"
need=""
for tool in mnexec:mininet iperf3:iperf3 ping:iputils-ping brctl:bridge-utils \
            tc:iproute2 ethtool:ethtool chromium:chromium chromedriver:chromium-driver \
            sshd:openssh-server sudo:sudo ssh:openssh-client; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || need="$need ${tool#*:}"
done
python3 -c 'import venv, ensurepip' 2>/dev/null || need="$need python3-venv"
if [ -n "$need" ]; then
    echo "*** Installing system packages:$need"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
echo "*** Installing Python dependencies into .venv"
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]' 2>&1 \
    | grep -v "^WARNING: Location" || true
# Import every module of every subpackage from outside the repository (the current
# folder would otherwise stand in for a broken installation).
(cd / && "$OLDPWD/.venv/bin/python" -m edgecollab.installcheck) || {
    echo "install.sh: edgecollab did not import after installation" >&2; exit 1; }
ln -sf "$(pwd)/.venv/bin/edgecollab" /usr/local/bin/edgecollab
echo "*** edgecollab installed: $(command -v edgecollab)"
