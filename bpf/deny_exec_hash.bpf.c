// SPDX-License-Identifier: GPL-2.0
/* deny_exec_hash: "prevent known vulnerable binaries from running". Refuse
 * (EPERM) to execute any file whose SHA-256 is `sha256`, whatever its name
 * or place: copying or renaming the binary does not get round it.
 *
 *     echo "deny_exec_hash.o sha256=$(sha256sum /usr/bin/vuln | cut -d' ' -f1)" > /mnt/krsi/process_execution
 *
 * The digest comes from IMA (bpf_ima_file_hash, kernel >= 5.18, CONFIG_IMA,
 * sleepable program: SEC("lsm.s"), allowed on bprm_check_security), which
 * computes it when IMA has not already. It is IMA's default hash algorithm:
 * SHA-256 on Debian's kernels (CONFIG_IMA_DEFAULT_HASH); on a kernel whose
 * default differs the digest never matches (nothing is denied).
 * Scripts are checked as themselves and then their interpreter.
 *
 * Globals:
 *   sha256  64 lowercase hex digits; empty denies nothing
 *
 * Event (each refusal): sha256=HEX file=PATH action=denied|would-deny
 * error=EPERM uid=N hook=HOOK; when IMA cannot hash: file=PATH error=ERRNO
 * (the exec is allowed). ERRNO is sent as a number, which krsifs prints by
 * name (error=EOPNOTSUPP), as it does every record's error. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "krsi_verdict.h"

#define HASH_ALGO_SHA256_ID 4

const volatile char sha256[65] = "";

SEC("lsm.s")
int BPF_PROG(deny_exec_hash, struct linux_binprm *bprm, int ret)
{
	static const char hex[] = "0123456789abcdef";
	__u8 digest[64] = {};

	if (ret != 0)
		return ret;
	if (sha256[0] == '\0')
		return 0;
	long algo = bpf_ima_file_hash(bprm->file, digest, sizeof(digest));
	if (algo < 0) {
		struct krsi_event *e = krsi_event_begin("deny_exec_hash");
		if (e) {
			krsi_event_str(e, "file", BPF_CORE_READ(bprm, filename));
			krsi_event_u64(e, "error", -algo);
			krsi_event_submit(e);
		}
		return 0;
	}
	if (algo != HASH_ALGO_SHA256_ID)
		return 0;
	for (int i = 0; i < 32; i++) {
		if (sha256[2 * i] != hex[digest[i] >> 4] || sha256[2 * i + 1] != hex[digest[i] & 15])
			return 0;
	}
	/* one NULL test of the record: see krsi_deny in deny.h */
	struct krsi_event *e = krsi_event_begin("deny_exec_hash");
	if (!e)
		return krsi_refuse(NULL, KRSI_EPERM);
	krsi_event_str(e, "sha256", (const char *)sha256);
	krsi_event_str(e, "file", BPF_CORE_READ(bprm, filename));
	return krsi_refuse(e, KRSI_EPERM);
}

char LICENSE[] SEC("license") = "GPL";
