// The kernel layer's exports: readObject, openObject, kernelHooks, attachProgram,
// attachPinnedTrace, linkInfo, progInfo, probe, and the events
// ring (eventsOpen, EventReader), pinnedLinks.
#include <malloc.h>

#include "bpf_common.h"

namespace krsi {

void InitBpf(Napi::Env env, Napi::Object exports) {
  InstallLibbpfPrinter();  // libbpf never writes to our stderr
  // glibc raises its mmap and trim thresholds to the biggest block freed so
  // far: once libbpf has freed a parse of the kernel's BTF (MiB) on a worker
  // thread, that thread's arena keeps as much at its top for good (about
  // 30 MiB with every behaviour file full). Fixed thresholds turn that off.
  mallopt(M_MMAP_THRESHOLD, 128 << 10);
  mallopt(M_TRIM_THRESHOLD, 128 << 10);
  auto* data = new BpfEnvData();
  env.AddCleanupHook([data]() { delete data; });
  InitThreads(env, data);
  InitRead(env, exports, data);
  InitObject(env, exports, data);
  InitLoad(env, exports);
  InitInfo(env, exports);
  InitHooks(env, exports);
  InitProbe(env, exports);
  InitEvents(env, exports);
  InitPins(env, exports);
  InitObserver(env, exports);
}

}  // namespace krsi
