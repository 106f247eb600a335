// Link: the JS handle of one attached program. It owns the bpf_link (and
// shares the bpf_object the program came from) until detach() or close().
#pragma once

#include <mutex>

#include "bpf_common.h"

namespace krsi {

// The object attached programs came from, with the kernel log buffer libbpf
// was given at open (it keeps the pointer).
struct ObjectHolder {
  std::vector<char> log;
  ObjectPtr obj;  // declared last: closed first
};

// Shared by the Link object and any worker working on it; the mutex
// serialises pin/unpin/detach, which may run on different libuv threads.
struct LinkState {
  std::mutex mu;
  LinkPtr link;
  std::shared_ptr<ObjectHolder> object;  // null for a link opened from a pin
  std::string name;                      // full program name from the object
  uint32_t id = 0;
  uint32_t progId = 0;
};

// A new JS Link for `state` (called on the JS thread).
Napi::Value NewLink(Napi::Env env, BpfEnvData* data, std::shared_ptr<LinkState> state);

// Fill id and progId from the kernel (bpf_obj_get_info_by_fd on the link fd).
int ReadLinkIds(LinkState* s);

}  // namespace krsi
