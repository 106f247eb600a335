// The C library's words for an errno, as the shell prints them: operators
// compare error_log with what `echo` said.
import { native } from '../addon.js';

export function strerror(errno: number): string {
  return native.strerror(errno) as string;
}
