// An object libbpf has opened (parsed once) and not loaded yet: made on the
// reader thread after a read (bpf_read.cc) or by openObject, loaded,
// attached and pinned by its handle's load() (bpf_object.cc).
#pragma once

#include "bpf_common.h"

namespace krsi {

// Shared by the JS handle and a load in flight: close() while a load runs
// leaves the object to the load, which frees it when done.
struct Opened {
  ObjectPtr obj;
  bool used = false;  // an object loads once
};

// {facts, handle} for JS (JS thread only, before any load).
Napi::Value NewOpened(Napi::Env env, BpfEnvData* data, std::shared_ptr<Opened> o);

}  // namespace krsi
