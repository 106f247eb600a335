// An object libbpf has opened (parsed once) and not loaded yet: made on the
// reader thread after a read (bpf_read.cc) or by openObject, loaded,
// attached and pinned by its handle's load() (bpf_object.cc).
#pragma once

#include <atomic>

#include "bpf_common.h"

namespace krsi {

// Shared by the JS handle and a worker in flight: close() while one runs
// leaves the object to it, which frees it when done.
struct Opened {
  // An object loads once; loaded without its links, it waits for link().
  enum class Step { kOpened, kBusy, kLoaded, kDone };
  ObjectPtr obj;
  std::atomic<Step> step{Step::kOpened};  // set by the worker, read by the handle
};

// {facts, handle} for JS (JS thread only, before any load).
Napi::Value NewOpened(Napi::Env env, BpfEnvData* data, std::shared_ptr<Opened> o);

}  // namespace krsi
