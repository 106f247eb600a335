/* SPDX-License-Identifier: GPL-2.0 */
/* Helpers shared by the seed policies (BPF side only). */
#pragma once

#define KRSI_LIST_MAX 256

/* Is name[0..len) one of the comma-separated words of list? With
 * `prefix`, is one of the words a prefix of name? '-' and '_' compare
 * equal when `dash` is set (module file names vs module names). */
static __always_inline bool krsi_in_list(const char *name, int len, const volatile char *list, bool prefix, bool dash)
{
	int j = 0;
	bool ok = true;

	for (int i = 0; i < KRSI_LIST_MAX; i++) {
		char c = list[i];
		if (c == ',' || c == '\0') {
			if (ok && j > 0 && (j == len || prefix))
				return true;
			if (c == '\0')
				return false;
			j = 0;
			ok = true;
			continue;
		}
		if (!ok)
			continue;
		if (j >= len || j >= 255) {
			ok = false;
			continue;
		}
		char n = name[j & 255];
		if (dash) {
			if (n == '-')
				n = '_';
			if (c == '-')
				c = '_';
		}
		if (n != c)
			ok = false;
		j++;
	}
	return false;
}
