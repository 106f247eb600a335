// SPDX-License-Identifier: GPL-2.0
/* block_removable_mounts: "prevent mounting of USB drives on servers".
 * Refuse (EPERM) new mounts whose filesystem type is in `types`, or whose
 * device path starts with one of `devs`; report each refusal.
 *
 *     echo block_removable_mounts.o > /mnt/krsi/filesystem_mount
 *     echo "block_removable_mounts.o types=tmpfs devs=/dev/loop" > /mnt/krsi/filesystem_mount
 *
 * sb_mount sees the mount(2) arguments as strings, not the block device, so
 * "removable" is by name: the filesystems such drives carry (the default
 * list) and device paths (/dev/sd, /dev/loop, ...). Remounts, bind mounts,
 * moves and propagation changes are not new filesystems and pass. The new
 * mount API (fsopen/fsmount) does not call sb_mount at all.
 *
 * Globals:
 *   types  comma-separated filesystem types (default vfat,exfat,msdos,ntfs,ntfs3,iso9660,udf)
 *   devs   comma-separated device path prefixes (default none)
 *
 * Event (each refusal): type=TYPE dev=DEV action=denied|would-deny error=EPERM uid=N hook=HOOK */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "krsi_verdict.h"
#include "policy.h"

#define MS_REMOUNT 32
#define MS_BIND 4096
#define MS_MOVE 8192
#define MS_PROPAGATION (1 << 17 | 1 << 18 | 1 << 19 | 1 << 20) /* UNBINDABLE PRIVATE SLAVE SHARED */

const volatile char types[KRSI_LIST_MAX] = "vfat,exfat,msdos,ntfs,ntfs3,iso9660,udf";
const volatile char devs[KRSI_LIST_MAX] = "";

static __always_inline int str_len(const char *s, int max)
{
	for (int i = 0; i < max; i++)
		if (s[i] == '\0')
			return i;
	return max;
}

SEC("lsm")
int BPF_PROG(block_removable_mounts, const char *dev_name, const struct path *path, const char *type,
	     unsigned long flags, void *data, int ret)
{
	char t[32] = {}, d[64] = {};

	if (ret != 0)
		return ret;
	if (flags & (MS_REMOUNT | MS_BIND | MS_MOVE | MS_PROPAGATION))
		return 0;
	if (type)
		bpf_probe_read_kernel_str(t, sizeof(t), type);
	if (dev_name)
		bpf_probe_read_kernel_str(d, sizeof(d), dev_name);
	bool refuse = krsi_in_list(t, str_len(t, sizeof(t)), types, false, false) ||
		      (d[0] && krsi_in_list(d, str_len(d, sizeof(d)), devs, true, false));
	if (!refuse)
		return 0;
	/* one NULL test of the record: see krsi_deny in deny.h */
	struct krsi_event *e = krsi_event_begin("block_removable_mounts");
	if (!e)
		return krsi_refuse(NULL, KRSI_EPERM);
	krsi_event_str(e, "type", t);
	krsi_event_str(e, "dev", d);
	return krsi_refuse(e, KRSI_EPERM);
}

char LICENSE[] SEC("license") = "GPL";
