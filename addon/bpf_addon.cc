// The kernel layer's exports: readObject, openObject, kernelHooks, attachProgram,
// attachPinnedTrace, linkInfo, progInfo, pinInfo, probe, and the events
// ring (eventsOpen, EventReader), pinnedLinks.
#include "bpf_common.h"

namespace krsi {

void InitBpf(Napi::Env env, Napi::Object exports) {
  InstallLibbpfPrinter();  // libbpf never writes to our stderr
  auto* data = new BpfEnvData();
  env.AddCleanupHook([data]() { delete data; });
  InitRead(env, exports, data);
  InitObject(env, exports, data);
  InitLoad(env, exports);
  InitInfo(env, exports);
  InitBtf(env, exports);
  InitProbe(env, exports);
  InitEvents(env, exports);
  InitPins(env, exports);
  InitObserver(env, exports);
}

}  // namespace krsi
