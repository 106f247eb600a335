import { execa } from 'execa';

export interface Run {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Run a bash command line as an operator would; never throws on failure. */
export async function bash(cmd: string, opts: { cwd?: string; timeout?: number } = {}): Promise<Run> {
  const r = await execa('bash', ['-c', cmd], { reject: false, cwd: opts.cwd, timeout: opts.timeout ?? 30000, stripFinalNewline: false });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}
