#!/bin/bash
# Run the tests (or a command) on a stock Debian 12 kernel, which has sch_netem, in a VM.
#
#   tests/vm/run.sh [pytest args]           pytest in the guest, e.g. -k 'delay or netem'
#   tests/vm/run.sh --command 'CMD'         a shell command in the guest's checkout
#
# Builds a Debian 12 (bookworm) root once with debootstrap from the mirror this host's apt
# uses, with linux-image-amd64, and keeps it in $EDGECOLLAB_VM_CACHE (default
# /var/cache/edgecollab-vm, outside the repository).  Each call copies that root, puts
# this checkout's files (tracked and untracked, not ignored) in /root/edgecollab, runs
# the README's install command there (./install.sh, natively in a chroot: Debian's own
# python3 and pip 23.0.1, the check importing every module), writes an ext4 image and
# boots it under qemu (TCG by default: EDGECOLLAB_VM_ACCEL=kvm where KVM works; -cpu max,
# since numpy's wheels use instructions qemu's default CPU model lacks), as root.
# The guest's console is printed here and kept in $EDGECOLLAB_VM_CACHE/last.log; the
# exit status is the guest command's.  ../shared is copied in beside the checkout when
# present (tests read traces from it).
#
# Environment: EDGECOLLAB_VM_CACHE, EDGECOLLAB_VM_ACCEL (tcg), EDGECOLLAB_VM_MEMORY (4096,
# MiB), EDGECOLLAB_VM_CPUS (2), EDGECOLLAB_VM_TIMEOUT (7200, s), EDGECOLLAB_VM_REBUILD=1
# to build the base root again.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${EDGECOLLAB_VM_CACHE:-/var/cache/edgecollab-vm}
ACCEL=${EDGECOLLAB_VM_ACCEL:-tcg}
MEMORY=${EDGECOLLAB_VM_MEMORY:-4096}
CPUS=${EDGECOLLAB_VM_CPUS:-2}
TIMEOUT=${EDGECOLLAB_VM_TIMEOUT:-7200}
SUITE=bookworm
# What the base root holds besides debootstrap's: the kernel users have, and what
# install.sh would install (installed here once so that each run's install is quick).
PACKAGES="linux-image-amd64 kmod procps iproute2 iputils-ping ca-certificates python3
          python3-venv mininet iperf3 bridge-utils ethtool chromium chromium-driver"
BASE=$CACHE/$SUITE-base
RUN=$CACHE/run

say() { echo "*** vm: $*" >&2; }
die() { echo "tests/vm/run.sh: $*" >&2; exit 2; }

[ "$(id -u)" = 0 ] || die "run me as root (debootstrap, chroot and mounts need it)"
if [ "${1:-}" = --command ]; then
    [ $# = 2 ] || die "--command takes one argument, the guest's shell command"
    JOB=$2
else
    JOB=".venv/bin/python -m pytest -q -rs --color=no -p no:cacheprovider $(printf '%q ' "$@")"
fi

need=""
for tool in qemu-system-x86_64:qemu-system-x86 debootstrap:debootstrap mkfs.ext4:e2fsprogs \
            debugfs:e2fsprogs; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || need="$need ${tool#*:}"
done
if [ -n "$need" ]; then
    say "installing$need"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
fi

mirror() {
    # The first Debian archive this host's apt is configured with.
    local uri
    uri=$(sed -n 's/^URIs:[[:space:]]*\(.*\/debian\)\/*$/\1/p' /etc/apt/sources.list.d/*.sources \
          2>/dev/null | head -n 1)
    [ -n "$uri" ] || uri=$(sed -n 's/^deb[[:space:]]\+\(http[^[:space:]]*\/debian\)\/*[[:space:]].*/\1/p' \
          /etc/apt/sources.list 2>/dev/null | head -n 1)
    echo "${uri:-http://deb.debian.org/debian}"
}

MOUNTED=()
unmount_all() {
    local i
    for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
        umount -l "${MOUNTED[$i]}" 2>/dev/null || true
    done
    MOUNTED=()
}
trap unmount_all EXIT
trap 'exit 130' INT TERM

in_chroot() {
    # Run a command in the root at $1 with /proc, /sys and /dev, and this host's pip
    # configuration and certificate authorities (pip reaches the index only with them).
    local root=$1; shift
    mkdir -p "$root/etc/xdg/pip" "$root/root/.config/pip" "$root/etc/ssl/certs"
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    for f in /etc/pip.conf /etc/xdg/pip/pip.conf /etc/xdg/pip/constraints.txt \
             /root/.config/pip/pip.conf; do
        [ -f "$f" ] && cp "$f" "$root$f"
    done
    [ -f /etc/ssl/certs/ca-certificates.crt ] && \
        cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/host-ca-certificates.crt"
    local m
    for m in proc sys dev dev/pts; do
        mount --bind "/$m" "$root/$m"
        MOUNTED+=("$root/$m")
    done
    PIP_CERT=/etc/ssl/certs/host-ca-certificates.crt \
        REQUESTS_CA_BUNDLE=/etc/ssl/certs/host-ca-certificates.crt \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        DEBIAN_FRONTEND=noninteractive chroot "$root" "$@"
    unmount_all
}

build_base() {
    local url
    url=$(mirror)
    say "building the $SUITE root from $url into $BASE (once; a few minutes)"
    rm -rf "$BASE.new"
    mkdir -p "$BASE.new"
    debootstrap --variant=minbase "$SUITE" "$BASE.new" "$url" >"$CACHE/debootstrap.log" 2>&1 \
        || { tail -n 20 "$CACHE/debootstrap.log" >&2; die "debootstrap failed (log: $CACHE/debootstrap.log)"; }
    echo "edgecollab-vm" > "$BASE.new/etc/hostname"
    printf '127.0.0.1 localhost\n127.0.1.1 edgecollab-vm\n' > "$BASE.new/etc/hosts"
    # apt resolves what debootstrap's --include leaves half-configured (chromium's GTK).
    in_chroot "$BASE.new" sh -c "apt-get update -qq && apt-get install -y -qq $(echo $PACKAGES)" \
        >>"$CACHE/debootstrap.log" 2>&1 \
        || { tail -n 20 "$CACHE/debootstrap.log" >&2; die "apt-get install failed in the base root"; }
    # A first install of the project warms pip's cache, so each run's install is quick.
    copy_checkout "$BASE.new/root/edgecollab"
    in_chroot "$BASE.new" sh -c 'cd /root/edgecollab && ./install.sh' \
        || die "install.sh failed in the base root"
    rm -rf "$BASE.new/root/edgecollab"
    rm -rf "$BASE"
    mv "$BASE.new" "$BASE"
}

copy_checkout() {
    # This checkout's files as git sees them (tracked and untracked, not ignored).
    mkdir -p "$1"
    (cd "$REPO" && git ls-files -z --cached --others --exclude-standard \
        | tar --null --ignore-failed-read -T - -cf - 2>/dev/null) | tar -xf - -C "$1"
}

mkdir -p "$CACHE"
[ -d "$BASE" ] && [ "${EDGECOLLAB_VM_REBUILD:-0}" != 1 ] || build_base

say "preparing the run's root"
rm -rf "$RUN"
mkdir -p "$RUN"
cp -a "$BASE" "$RUN/root"
copy_checkout "$RUN/root/root/edgecollab"
if [ -d "$REPO/../shared" ]; then
    mkdir -p "$RUN/root/root/shared"
    cp -a "$REPO/../shared/." "$RUN/root/root/shared/"
fi
say "installing the project in the guest's root: ./install.sh (Debian's python3 and pip)"
in_chroot "$RUN/root" sh -c 'cd /root/edgecollab && ./install.sh' \
    || die "./install.sh failed in the guest's root"

cat > "$RUN/root/root/vm-job.sh" <<EOF
cd /root/edgecollab
$JOB
EOF
cat > "$RUN/root/sbin/edgecollab-vm-init" <<'EOF'
#!/bin/sh
# PID 1 of the guest: mount what Mininet needs, run the job, power off.
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH HOME=/root LANG=C.UTF-8 CI=true EDGECOLLAB_VM_ACCEL=@ACCEL@
mount -o remount,rw /
mountpoint -q /proc || mount -t proc proc /proc
mountpoint -q /sys || mount -t sysfs sys /sys
mountpoint -q /dev || mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
hostname edgecollab-vm
ip link set lo up
echo "edgecollab-vm: kernel $(uname -r), $(nproc) CPUs"
sh /root/vm-job.sh </dev/null
echo "edgecollab-vm: exit $?"
sync
echo 1 > /proc/sys/kernel/sysrq
echo o > /proc/sysrq-trigger
sleep 60
EOF
# The tests read EDGECOLLAB_VM_ACCEL to tell software emulation (tcg) from a real CPU.
sed -i "s/@ACCEL@/$ACCEL/" "$RUN/root/sbin/edgecollab-vm-init"
chmod +x "$RUN/root/sbin/edgecollab-vm-init"
kernel=$(ls "$RUN"/root/boot/vmlinuz-* | sort -V | tail -n 1)
initrd=$(ls "$RUN"/root/boot/initrd.img-* | sort -V | tail -n 1)
cp "$kernel" "$RUN/vmlinuz"
cp "$initrd" "$RUN/initrd.img"
say "writing the guest's disk image"
size_mb=$(( $(du -sm "$RUN/root" | cut -f1) + 3072 ))
mkfs.ext4 -q -F -L edgecollab-vm -d "$RUN/root" "$RUN/disk.img" "${size_mb}M"
rm -rf "$RUN/root"

say "booting $(basename "$kernel") under qemu ($ACCEL, $CPUS CPUs, $MEMORY MiB): $JOB"
set +e
timeout --foreground -k 10 "$TIMEOUT" qemu-system-x86_64 -accel "$ACCEL" -cpu max -m "$MEMORY" -smp "$CPUS" \
    -kernel "$RUN/vmlinuz" -initrd "$RUN/initrd.img" \
    -append "root=/dev/vda rw console=ttyS0 loglevel=5 net.ifnames=0 panic=-1 init=/sbin/edgecollab-vm-init" \
    -drive "file=$RUN/disk.img,format=raw,if=virtio" -nic none \
    -display none -monitor none -serial stdio -no-reboot </dev/null | tee "$CACHE/last.log"
qemu=${PIPESTATUS[0]}
set -e
status=$(sed -n 's/^edgecollab-vm: exit \([0-9]\+\).*/\1/p' "$CACHE/last.log" | tail -n 1)
if [ -z "$status" ]; then
    die "the guest ended without an exit status (qemu $qemu; console in $CACHE/last.log)"
fi
rm -f "$RUN/disk.img"
exit "$status"
