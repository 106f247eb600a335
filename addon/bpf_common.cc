#include "bpf_common.h"

#include <unistd.h>

#include <string.h>

#include <cstdarg>
#include <cstdio>
#include <mutex>

namespace krsi {

namespace {
thread_local std::string tlsLog;

int CapturePrint(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  char buf[1024];
  int n = vsnprintf(buf, sizeof(buf), fmt, args);
  if (n < 0) return 0;
  // keep the tail only: the last warnings are the ones that explain a failure
  if (tlsLog.size() > 64 * 1024) tlsLog.erase(0, tlsLog.size() - 32 * 1024);
  tlsLog.append(buf, std::min<size_t>(n, sizeof(buf) - 1));
  return n;
}
}  // namespace

void InstallLibbpfPrinter() { libbpf_set_print(CapturePrint); }
void ClearLibbpfLog() { tlsLog.clear(); }
const std::string& LibbpfLog() { return tlsLog; }

std::string ErrText(int err) {
  char buf[128];
  std::string s = strerror_r(err, buf, sizeof(buf));
  if (!s.empty() && s[0] >= 'A' && s[0] <= 'Z' && !(s.size() > 1 && s[1] >= 'A' && s[1] <= 'Z'))
    s[0] = s[0] - 'A' + 'a';
  return s;
}

std::string BpfFdKind(int fd, int selfFds) {
  char buf[64];
  std::string name = std::to_string(fd);
  ssize_t n = selfFds >= 0 ? readlinkat(selfFds, name.c_str(), buf, sizeof(buf) - 1)
                           : readlink(("/proc/self/fd/" + name).c_str(), buf, sizeof(buf) - 1);
  if (n <= 0) return "";
  std::string s(buf, n);
  const std::string prefix = "anon_inode:bpf-";
  if (s.compare(0, prefix.size(), prefix) != 0) return "";
  s = s.substr(prefix.size());
  return s == "link" || s == "map" || s == "prog" ? s : "";
}

ObjectPtr OpenObject(const std::vector<uint8_t>& data, const std::string& name, Failure* f) {
  LIBBPF_OPTS(bpf_object_open_opts, opts);
  if (!name.empty()) opts.object_name = name.c_str();
  ClearLibbpfLog();
  errno = 0;
  bpf_object* obj = bpf_object__open_mem(data.data(), data.size(), &opts);
  if (obj == nullptr) {
    int err = errno ? errno : EINVAL;
    // lib/kernel/object.ts openFailure words it, from libbpf's log
    f->set(err, "open object: " + ErrText(err));
    f->detail("libbpf", LibbpfLog());
    return nullptr;
  }
  return ObjectPtr(obj);
}

std::string CompanionOfLink(const bpf_link_info& info) {
  if (info.type != BPF_LINK_TYPE_TRACING) return "";
  const char* kind = info.tracing.attach_type == BPF_TRACE_FENTRY  ? "fentry"
                     : info.tracing.attach_type == BPF_TRACE_FEXIT ? "fexit"
                                                                   : nullptr;
  if (kind == nullptr) return "";
  int err = 0;
  // target_obj_id names the BTF object the target is in: vmlinux's, or a
  // module's (split BTF on top of vmlinux's, loaded for this one lookup)
  BtfPtr vmlinux, module;
  const btf* b = nullptr;
  UniqueFd fd(bpf_btf_get_fd_by_id(info.tracing.target_obj_id));
  if (fd.valid()) {
    char name[64] = "";
    bpf_btf_info bi = {};
    bi.name = reinterpret_cast<uintptr_t>(name);
    bi.name_len = sizeof(name);
    uint32_t len = sizeof(bi);
    if (bpf_obj_get_info_by_fd(fd.get(), &bi, &len) == 0 && strcmp(name, "vmlinux") != 0) {
      vmlinux = LoadVmlinuxBtf(&err);
      if (vmlinux) module.reset(btf__load_from_kernel_by_id_split(info.tracing.target_obj_id, vmlinux.get()));
      if (!module) return std::string(kind) + ":?";
      b = module.get();
    }
  }
  if (b == nullptr) {
    std::string fn = VmlinuxFuncName(info.tracing.target_btf_id);
    return std::string(kind) + ":" + (fn.empty() ? "?" : fn);
  }
  uint32_t id = info.tracing.target_btf_id;
  const btf_type* t = id != 0 && id < btf__type_cnt(b) ? btf__type_by_id(b, id) : nullptr;
  const char* fn = t && btf_is_func(t) ? btf__name_by_offset(b, t->name_off) : nullptr;
  return std::string(kind) + ":" + (fn ? fn : "?");
}

namespace {
class Worker : public Napi::AsyncWorker {
 public:
  Worker(Napi::Env env, const char* name, std::function<void(Failure*)> run, std::function<Napi::Value(Napi::Env)> done)
      : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)), run_(std::move(run)), done_(std::move(done)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

 private:
  void Execute() override {
    ClearLibbpfLog();
    run_(&failure_);
    if (failure_.failed()) SetError(failure_.message);
  }
  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    Napi::Value v = done_(env);
    if (env.IsExceptionPending()) {
      deferred_.Reject(env.GetAndClearPendingException().Value());
      return;
    }
    deferred_.Resolve(v);
  }
  void OnError(const Napi::Error&) override {
    Napi::HandleScope scope(Env());
    deferred_.Reject(MakeError(Env(), failure_));
  }
  Napi::Promise::Deferred deferred_;
  std::function<void(Failure*)> run_;
  std::function<Napi::Value(Napi::Env)> done_;
  Failure failure_;
};
}  // namespace

Napi::Promise Work(Napi::Env env, const char* name, std::function<void(Failure*)> run,
                   std::function<Napi::Value(Napi::Env)> done) {
  auto* w = new Worker(env, name, std::move(run), std::move(done));
  Napi::Promise p = w->Promise();
  w->Queue();  // the worker deletes itself once settled
  return p;
}

Napi::Value MadeValue(Napi::Env env, const Made& m, bool named) {
  Napi::Object o = Napi::Object::New(env);
  if (named) o.Set("name", m.name);
  o.Set("progId", m.progId);
  o.Set("linkId", m.linkId);
  return o;
}

bool CopyBytes(Napi::Env env, Napi::Value v, const char* what, std::vector<uint8_t>* out) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    Napi::TypeError::New(env, std::string(what) + ": expected a Buffer").ThrowAsJavaScriptException();
    return false;
  }
  Napi::Uint8Array a = v.As<Napi::Uint8Array>();
  out->assign(a.Data(), a.Data() + a.ElementLength());
  return true;
}

}  // namespace krsi
