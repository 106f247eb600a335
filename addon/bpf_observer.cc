// The shared counters the denial observer writes (the observer itself loads
// as any object does: lib/kernel/index.ts attachObserver).
//   mapLookup(path, key: bigint) -> Buffer | null   one value of a pinned map
//   mapDelete(path, key: bigint) -> boolean         false: there was no such key
// Both map calls are a few syscalls: synchronous, like eventsOpen.
#include <errno.h>

#include "bpf_common.h"

namespace krsi {

namespace {

// (path, key) of a map call, and the map opened; false with a pending error.
bool OpenMapKey(const Napi::CallbackInfo& info, const char* what, UniqueFd* fd, uint64_t* key, bpf_map_info* mi) {
  Napi::Env env = info.Env();
  bool lossless = false;
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsBigInt()) {
    Napi::TypeError::New(env, std::string(what) + "(path: string, key: bigint)").ThrowAsJavaScriptException();
    return false;
  }
  *key = info[1].As<Napi::BigInt>().Uint64Value(&lossless);
  if (!lossless) {
    Napi::TypeError::New(env, std::string(what) + ": key must fit in 64 bits").ThrowAsJavaScriptException();
    return false;
  }
  std::string path = info[0].As<Napi::String>().Utf8Value();
  fd->reset(bpf_obj_get(path.c_str()));
  if (!fd->valid()) {
    int err = errno;
    ThrowError(env, err, std::string(what) + ": open " + path + ": " + ErrText(err));
    return false;
  }
  uint32_t len = sizeof(*mi);
  if (bpf_obj_get_info_by_fd(fd->get(), mi, &len) != 0 || mi->key_size != sizeof(uint64_t)) {
    ThrowError(env, EINVAL, std::string(what) + ": " + path + " is not a map with 64-bit keys");
    return false;
  }
  return true;
}

Napi::Value MapLookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UniqueFd fd;
  uint64_t key = 0;
  bpf_map_info mi{};
  if (!OpenMapKey(info, "mapLookup", &fd, &key, &mi)) return env.Undefined();
  // per-CPU maps are not ours to read: the shared maps are plain hashes
  std::vector<uint8_t> value(mi.value_size);
  if (bpf_map_lookup_elem(fd.get(), &key, value.data()) != 0) {
    int err = errno;
    if (err == ENOENT) return env.Null();
    ThrowError(env, err, "mapLookup: " + ErrText(err));
    return env.Undefined();
  }
  return Napi::Buffer<uint8_t>::Copy(env, value.data(), value.size());
}

Napi::Value MapDelete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UniqueFd fd;
  uint64_t key = 0;
  bpf_map_info mi{};
  if (!OpenMapKey(info, "mapDelete", &fd, &key, &mi)) return env.Undefined();
  if (bpf_map_delete_elem(fd.get(), &key) != 0) {
    int err = errno;
    if (err == ENOENT) return Napi::Boolean::New(env, false);
    ThrowError(env, err, "mapDelete: " + ErrText(err));
    return env.Undefined();
  }
  return Napi::Boolean::New(env, true);
}

}  // namespace

void InitObserver(Napi::Env env, Napi::Object exports) {
  exports.Set("mapLookup", Napi::Function::New(env, MapLookup, "mapLookup"));
  exports.Set("mapDelete", Napi::Function::New(env, MapDelete, "mapDelete"));
}

}  // namespace krsi
