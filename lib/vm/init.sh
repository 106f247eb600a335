#!/bin/sh
# /init of the krsifs VM (busybox sh). The host reads the console: every line
# this script prints starts with "krsifs-vm/<nonce>: " so it can tell them
# from the command's output, and the last one carries the exit status.
# Kernel command line (the kernel hands unknown key=value words to init as
# environment): krsifs_nonce, krsifs_mode (cmd|shell), krsifs_mount (1|0).
# The command itself comes through QEMU's fw_cfg (opt/krsifs/cmd), which has
# no size limit and needs no per-run copy of this image; so does an optional
# boot script (opt/krsifs/boot), sourced before the daemon starts, which may
# set KRSIFS_MOUNT_ARGS.
export PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME=/root TERM=${TERM:-linux}
P="krsifs-vm/${krsifs_nonce:-0}:"
say() { echo "$P $*"; }
finish() {
	say "exit $1"
	sync
	# poweroff -f stops the machine at once: the exit line may still be in
	# the console's tty buffer, not yet through the UART (the host then sees
	# QEMU exit "before the command finished"; it happened under load)
	sleep 1
	poweroff -f
	echo o >/proc/sysrq-trigger
	sleep 10
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t securityfs securityfs /sys/kernel/security
mount -t bpf bpf /sys/fs/bpf
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /dev/shm
# raw output: the host sees the command's bytes, not \n turned into \r\n
stty -onlcr 2>/dev/null
hostname krsifs-vm
ip link set lo up 2>/dev/null
ulimit -l unlimited 2>/dev/null
kver=$(uname -r)
# a module where the kernel has it as one (6.1); built in elsewhere (6.12)
if ! grep -q '[[:space:]]fuse$' /proc/filesystems; then
	insmod /lib/modules/$kver/kernel/fs/fuse/fuse.ko || say "insmod fuse.ko failed"
fi
mkdir -p /mnt/krsi
say booted

insmod /lib/modules/$kver/kernel/drivers/firmware/qemu_fw_cfg.ko 2>/dev/null
if [ "$krsifs_mode" = cmd ]; then
	f=/sys/firmware/qemu_fw_cfg/by_name/opt/krsifs/cmd/raw
	if ! cat $f >/run/krsifs-cmd 2>/dev/null; then
		say "cannot read the command from fw_cfg ($f)"
		finish 125
	fi
fi

KRSIFS_MOUNT_ARGS=
boot=/sys/firmware/qemu_fw_cfg/by_name/opt/krsifs/boot/raw
if [ -e $boot ]; then
	cat $boot >/run/krsifs-boot
	. /run/krsifs-boot
fi

cd /krsifs
if [ "$krsifs_mount" = 1 ]; then
	if [ -f dist/lib/cli.js ] && grep -q "mount" dist/lib/cli.js; then
		# shellcheck disable=SC2086 # word splitting of the arguments is the point
		setsid node --max-semi-space-size=1 dist/lib/cli.js mount /mnt/krsi $KRSIFS_MOUNT_ARGS >/tmp/krsifs.log 2>&1 </dev/null &
		pid=$!
		i=0
		while ! grep -q " /mnt/krsi fuse" /proc/mounts; do
			i=$((i + 1))
			if [ $i -gt 100 ] || ! kill -0 $pid 2>/dev/null; then break; fi
			sleep 0.2
		done
		if grep -q " /mnt/krsi fuse" /proc/mounts; then
			say "mounted krsifs at /mnt/krsi (pid $pid, log /tmp/krsifs.log)"
		else
			kill -0 $pid 2>/dev/null && why="not mounted after 20 s" || why="the daemon exited"
			say "mount krsifs: /mnt/krsi is not a fuse mount: $why; log /tmp/krsifs.log:"
			while IFS= read -r l; do say "| $l"; done </tmp/krsifs.log
		fi
	else
		say "mount krsifs: dist/lib/cli.js has no mount command; skipped"
	fi
fi

if [ "$krsifs_mode" = cmd ]; then
	say running
	sh -c "$(cat /run/krsifs-cmd)" </dev/null
	finish $?
else
	say "shell (exit or ^D powers off)"
	setsid cttyhack sh
	finish $?
fi
