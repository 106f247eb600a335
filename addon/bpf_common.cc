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

}  // namespace krsi
