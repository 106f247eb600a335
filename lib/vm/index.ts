// The VM runner's API, for the CLI and the test suites.
export { runInVm, prepareVm, findQemu, checkAccel, ConsoleParser, type RunOptions, type RunResult } from './run.js';
export { fetchKernel, type Kernel } from './kernel.js';
export { buildImage, type Image } from './image.js';
export { vmMain, parseVmArgs, shellQuote } from './cli.js';
