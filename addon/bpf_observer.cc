// krsifs's denial observer and the shared counters it writes.
//   attachObserver(data, hook, {globals, reuseMaps, pinPath}) -> {progId, linkId}
//     loads bpf/krsi_observer.o with its one fexit program aimed at
//     bpf_lsm_<hook>, attaches it and pins the link at pinPath (the pin holds
//     it: no fd stays open). EOPNOTSUPP for a hook that returns void (it has
//     no verdict); E2BIG when the hook's trampoline is full.
//   mapLookup(path, key: bigint) -> Buffer | null   one value of a pinned map
//   mapDelete(path, key: bigint) -> boolean         false: there was no such key
// Both map calls are a few syscalls: synchronous, like eventsOpen.
#include <errno.h>
#include <malloc.h>

#include "bpf_object.h"

namespace krsi {

namespace {

// The return type of bpf_lsm_<hook>: void hooks (bprm_committed_creds, ...)
// leave garbage where fexit reads the verdict. 0: returns a value.
int CheckReturnsValue(const std::string& hook, Failure* f) {
  int err = 0;
  const KernelHook* h = FindKernelHook(hook, &err);
  if (err != 0) {
    f->set(err, "observer: read the kernel's BTF: " + ErrText(err));
    return err;
  }
  if (h == nullptr) {
    f->set(EINVAL, "observer: no bpf_lsm_" + hook + " in the kernel's BTF");
    return EINVAL;
  }
  if (!h->returnsValue) {
    f->set(EOPNOTSUPP, "observer: hook " + hook + " returns void: it has no verdict to observe");
    f->detailsJson = "{\"hook\":" + JsonString(hook) + ",\"returnsVoid\":true}";
    return EOPNOTSUPP;
  }
  return 0;
}

class AttachObserverWorker : public PromiseWorker {
 public:
  AttachObserverWorker(Napi::Env env, std::vector<uint8_t> bytes, std::string hook, std::vector<GlobalValue> globals,
                       std::vector<std::pair<std::string, std::string>> reuse, std::string pinPath)
      : PromiseWorker(env, "krsifs:AttachObserverWorker"),
        bytes_(std::move(bytes)),
        hook_(std::move(hook)),
        globals_(std::move(globals)),
        reuse_(std::move(reuse)),
        pinPath_(std::move(pinPath)) {}

 protected:
  void Run() override {
    Load();
    malloc_trim(0);  // what libbpf freed after parsing the kernel's BTF: as in loadAndAttach
  }

  void Load() {
    if (CheckReturnsValue(hook_, &failure_) != 0) return;
    std::vector<char> log(1u << 20, '\0');
    ObjectPtr obj = OpenObject(bytes_, "krsi_observer.o", log.data(), log.size(), &failure_);
    if (!obj) return;
    bpf_program* p = bpf_object__next_program(obj.get(), nullptr);
    if (p == nullptr || bpf_object__next_program(obj.get(), p) != nullptr) {
      failure_.set(EINVAL, "observer: the object must hold exactly one program");
      return;
    }
    std::string target = "bpf_lsm_" + hook_;
    int e = bpf_program__set_attach_target(p, 0, target.c_str());
    if (e != 0) {
      failure_.set(-e, "observer: set attach target " + target + ": " + ErrText(-e));
      return;
    }
    if (!SetGlobals(obj.get(), globals_, &failure_)) return;
    if (!ReuseMaps(obj.get(), reuse_, &failure_)) return;
    ClearLibbpfLog();
    e = bpf_object__load(obj.get());
    if (e != 0) {
      std::string last = LibbpfLastLine();
      failure_.set(-e, "observer: load for " + target + ": " + ErrText(-e) + (last.empty() ? "" : " (" + last + ")"));
      // the verifier's reasons, for error_log (the last lines say why)
      std::string line;
      for (const char* c = log.data(); *c; c++) {
        if (*c != '\n') {
          line += *c;
          continue;
        }
        failure_.verifierLog.push_back(line);
        line.clear();
      }
      if (failure_.verifierLog.size() > 40)
        failure_.verifierLog.erase(failure_.verifierLog.begin(), failure_.verifierLog.end() - 40);
      return;
    }
    errno = 0;
    LinkPtr link(bpf_program__attach_trace(p));
    if (!link) {
      int err = errno ? errno : EINVAL;
      std::string cause = ErrText(err);
      if (err == E2BIG) cause += " (the hook's trampoline is full: the kernel's limit of programs on one hook)";
      failure_.set(err, "observer: attach fexit to " + target + ": " + cause);
      return;
    }
    bpf_link_info li = {};
    uint32_t len = sizeof(li);
    if (bpf_obj_get_info_by_fd(bpf_link__fd(link.get()), &li, &len) != 0) {
      failure_.set(errno, "observer: link info: " + ErrText(errno));
      return;
    }
    linkId_ = li.id;
    progId_ = li.prog_id;
    e = bpf_link__pin(link.get(), pinPath_.c_str());
    if (e != 0) {
      failure_.set(-e, "observer: pin its link at " + pinPath_ + ": " + ErrText(-e));
      return;  // the link goes with our fd
    }
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("progId", progId_);
    o.Set("linkId", linkId_);
    return o;
  }

 private:
  std::vector<uint8_t> bytes_;
  std::string hook_;
  std::vector<GlobalValue> globals_;
  std::vector<std::pair<std::string, std::string>> reuse_;
  std::string pinPath_;
  uint32_t progId_ = 0;
  uint32_t linkId_ = 0;
};

Napi::Value AttachObserver(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<uint8_t> bytes;
  if (!CopyBytes(env, info[0], "attachObserver", &bytes)) return env.Undefined();
  if (info.Length() < 3 || !info[1].IsString() || !info[2].IsObject()) {
    Napi::TypeError::New(env, "attachObserver(data: Buffer, hook: string, {globals, reuseMaps, pinPath})").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string hook = info[1].As<Napi::String>().Utf8Value();
  Napi::Object opts = info[2].As<Napi::Object>();
  Napi::Value pin = opts.Get("pinPath");
  if (!IsIdentifier(hook) || !pin.IsString()) {
    Napi::TypeError::New(env, "attachObserver: hook must be an identifier and pinPath a path").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::vector<GlobalValue> globals;
  std::vector<std::pair<std::string, std::string>> reuse;
  if (!ParseGlobals(env, opts.Get("globals"), "attachObserver", &globals)) return env.Undefined();
  if (!ParseReuseMaps(env, opts.Get("reuseMaps"), "attachObserver", &reuse)) return env.Undefined();
  return (new AttachObserverWorker(env, std::move(bytes), hook, std::move(globals), std::move(reuse),
                                   pin.As<Napi::String>().Utf8Value()))
      ->Queue();
}

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
  exports.Set("attachObserver", Napi::Function::New(env, AttachObserver, "attachObserver"));
  exports.Set("mapLookup", Napi::Function::New(env, MapLookup, "mapLookup"));
  exports.Set("mapDelete", Napi::Function::New(env, MapDelete, "mapDelete"));
}

}  // namespace krsi
