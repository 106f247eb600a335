// The C library's words for an errno, as the shell prints them: tests and
// operators compare error_log with what `echo` said.
const words: Record<number, string> = {
  1: 'Operation not permitted',
  2: 'No such file or directory',
  5: 'Input/output error',
  7: 'Argument list too long',
  8: 'Exec format error',
  9: 'Bad file descriptor',
  12: 'Cannot allocate memory',
  13: 'Permission denied',
  16: 'Device or resource busy',
  17: 'File exists',
  19: 'No such device',
  20: 'Not a directory',
  21: 'Is a directory',
  22: 'Invalid argument',
  27: 'File too large',
  28: 'No space left on device',
  29: 'Illegal seek',
  30: 'Read-only file system',
  38: 'Function not implemented',
  95: 'Operation not supported',
  524: 'Unknown error 524',
};

export function strerror(errno: number): string {
  return words[errno] ?? `Unknown error ${errno}`;
}
