#include "bpf_common.h"

#include <pthread.h>
#include <signal.h>
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

struct ThreadHub {
  std::mutex mu;
  napi_threadsafe_function tsfn = nullptr;
  bool alive = false;  // false once the env is gone: a late thread drops its result
  int keepingAlive = 0;  // JS thread only: jobs in flight that hold the process
};

namespace {
// Virtual size: only the pages touched count (libbpf's load, its opens).
constexpr size_t kThreadStack = 1u << 20;

// Owned by its thread until handed to the JS thread (or dropped there when
// nobody can take it).
struct ThreadJob {
  std::shared_ptr<ThreadHub> hub;
  const char* name;
  bool keepAlive;
  std::function<void(Failure*)> run;
  std::function<Napi::Value(Napi::Env)> done;
  napi_deferred deferred = nullptr;  // JS thread only
  Failure failure;
};

void* ThreadMain(void* arg) {
  std::unique_ptr<ThreadJob> job(static_cast<ThreadJob*>(arg));
  pthread_setname_np(pthread_self(), job->name);
  ClearLibbpfLog();
  job->run(&job->failure);
  std::shared_ptr<ThreadHub> hub = job->hub;
  std::lock_guard<std::mutex> lock(hub->mu);
  if (hub->alive && napi_call_threadsafe_function(hub->tsfn, job.get(), napi_tsfn_nonblocking) == napi_ok)
    job.release();  // the JS thread owns it now
  return nullptr;
}

// On the JS thread; env is null when the env is going away: then only free it.
void SettleJob(napi_env env, napi_value, void*, void* data) {
  std::unique_ptr<ThreadJob> job(static_cast<ThreadJob*>(data));
  if (env == nullptr) return;
  Napi::Env e(env);
  Napi::HandleScope scope(e);
  if (job->keepAlive && --job->hub->keepingAlive == 0) napi_unref_threadsafe_function(env, job->hub->tsfn);
  if (job->failure.failed()) {
    napi_reject_deferred(env, job->deferred, MakeError(e, job->failure));
    return;
  }
  Napi::Value v = job->done(e);
  if (e.IsExceptionPending()) {
    napi_reject_deferred(env, job->deferred, e.GetAndClearPendingException().Value());
    return;
  }
  napi_resolve_deferred(env, job->deferred, v);
}

struct HubRef {
  std::shared_ptr<ThreadHub> hub;
};

void HubFinalize(napi_env, void* data, void*) {
  std::unique_ptr<HubRef> ref(static_cast<HubRef*>(data));
  std::lock_guard<std::mutex> lock(ref->hub->mu);
  ref->hub->alive = false;
  ref->hub->tsfn = nullptr;
}
}  // namespace

void InitThreads(Napi::Env env, BpfEnvData* data) {
  data->threads = std::make_shared<ThreadHub>();
  auto* ref = new HubRef{data->threads};
  napi_value name = Napi::String::New(env, "krsifs:threads");
  napi_threadsafe_function tsfn;
  if (napi_create_threadsafe_function(env, nullptr, nullptr, name, 0, 1, ref, HubFinalize, nullptr, SettleJob, &tsfn) !=
      napi_ok) {
    delete ref;
    Napi::Error::New(env, "krsifs: cannot create the threadsafe function of the own threads").ThrowAsJavaScriptException();
    return;
  }
  napi_unref_threadsafe_function(env, tsfn);  // referenced while a keepAlive job runs
  std::lock_guard<std::mutex> lock(data->threads->mu);
  data->threads->tsfn = tsfn;
  data->threads->alive = true;
}

Napi::Promise OnOwnThread(Napi::Env env, BpfEnvData* data, const char* name, bool keepAlive,
                          std::function<void(Failure*)> run, std::function<Napi::Value(Napi::Env)> done) {
  napi_value promise;
  auto job = std::make_unique<ThreadJob>(ThreadJob{data->threads, name, keepAlive, std::move(run), std::move(done)});
  napi_create_promise(env, &job->deferred, &promise);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, kThreadStack);
  // The thread takes no signal: they go to the threads that handle them.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_t thread;
  int err = pthread_create(&thread, &attr, ThreadMain, job.get());
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  pthread_attr_destroy(&attr);
  if (err != 0) {
    napi_reject_deferred(env, job->deferred, MakeError(env, err, std::string(name) + ": cannot start a thread: " + ErrText(err)));
    return Napi::Promise(env, promise);
  }
  // Settled on this (the JS) thread, later: counting after the start is safe.
  if (keepAlive && data->threads->keepingAlive++ == 0) napi_ref_threadsafe_function(env, data->threads->tsfn);
  job.release();  // the thread owns it
  return Napi::Promise(env, promise);
}

Napi::Value MadeValue(Napi::Env env, const Made& m, bool named) {
  Napi::Object o = Napi::Object::New(env);
  if (named) o.Set("name", m.name);
  o.Set("progId", m.progId);
  o.Set("linkId", m.linkId);
  return o;
}

}  // namespace krsi
