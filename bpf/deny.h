/* SPDX-License-Identifier: GPL-2.0 */
/* Helpers shared by the sample deny_* policies (BPF side only). They refuse
 * through krsi_refuse (krsi_verdict.h): reported, counted, monitor mode.
 *
 * Each policy compares a path with `const volatile char target[KRSI_PATH_MAX]`,
 * set by krsifs before load (`echo "deny_exec.o target=/usr/bin/true" > ...`).
 * The target lives in .rodata: the verifier sees it as read-only and the
 * comparison loop stays bounded. */
#pragma once

#include "krsi_verdict.h"

#define KRSI_PATH_MAX 256

/* true when the NUL-terminated string in buf equals target; buf must hold
 * KRSI_PATH_MAX bytes. A bounded loop (kernel >= 5.3): no unrolling needed. */
static __always_inline bool krsi_path_eq(const char *buf, const volatile char *target)
{
	for (int i = 0; i < KRSI_PATH_MAX; i++) {
		if (buf[i] != target[i])
			return false;
		if (buf[i] == '\0')
			return true;
	}
	return true;
}

/* The refusal of a deny_* policy: a record `file=PATH` from `program`, then
 * krsi_refuse: -EPERM (0 in monitor mode).
 *
 * The record is tested for NULL once, and krsi_refuse gets NULL or a pointer
 * clang knows is not NULL, so that its own test folds away: the 6.1 verifier
 * does not know a ring buffer record it has seen checked is not NULL, and a
 * second test would send it down a path that never submits the record
 * ("Unreleased reference"). Every shipped policy refuses in this shape. */
static __always_inline int krsi_deny(const char *program, const char *path)
{
	struct krsi_event *e = krsi_event_begin(program);

	if (!e)
		return krsi_refuse(NULL, KRSI_EPERM);
	krsi_event_str(e, "file", path);
	return krsi_refuse(e, KRSI_EPERM);
}

/* Refuse (krsi_deny) when the file's canonical path (bpf_d_path, which the
 * kernel allows on file_open) is target; 0 otherwise, and 0 when target is
 * empty. Shared by deny_open (bound to file_open) and deny_path
 * (hook-agnostic). */
static __always_inline int krsi_deny_file(const char *program, struct file *file, const volatile char *target)
{
	char buf[KRSI_PATH_MAX];

	if (target[0] == '\0')
		return 0;
	/* f_path is const in newer kernels; the helper only reads it */
	if (bpf_d_path((struct path *)&file->f_path, buf, sizeof(buf)) < 0)
		return 0;
	return krsi_path_eq(buf, target) ? krsi_deny(program, buf) : 0;
}
