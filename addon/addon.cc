// The native addon: the kernel layer (libbpf, bpf_*.cc) and the FUSE session
// (libfuse3 low level, fuse_*.cc). The only code that calls libbpf or libfuse.
#include <napi.h>

#include "errors.h"

namespace krsi {
void InitBpf(Napi::Env env, Napi::Object exports);
void InitFuse(Napi::Env env, Napi::Object exports);
void InitLock(Napi::Env env, Napi::Object exports);
void InitNotify(Napi::Env env, Napi::Object exports);
}  // namespace krsi

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  krsi::InitErrors(env, exports);
  krsi::InitBpf(env, exports);
  krsi::InitFuse(env, exports);
  krsi::InitLock(env, exports);
  krsi::InitNotify(env, exports);
  return exports;
}

NODE_API_MODULE(krsifs, Init)
