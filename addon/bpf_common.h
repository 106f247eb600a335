// The kernel layer's shared plumbing: RAII handles for libbpf objects and
// file descriptors, the libbpf log capture, Work (every Promise-returning call),
// and small helpers every bpf_*.cc uses. Only the addon calls libbpf.
#pragma once

#include <napi.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "errors.h"

namespace krsi {

// A file descriptor closed exactly once.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    reset(o.release());
    return *this;
  }
  ~UniqueFd() { reset(); }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

struct ObjectCloser {
  void operator()(bpf_object* o) const { bpf_object__close(o); }
};
struct LinkDestroyer {
  void operator()(bpf_link* l) const { bpf_link__destroy(l); }
};
struct BtfFreer {
  void operator()(btf* b) const { btf__free(b); }
};
using ObjectPtr = std::unique_ptr<bpf_object, ObjectCloser>;
using LinkPtr = std::unique_ptr<bpf_link, LinkDestroyer>;
using BtfPtr = std::unique_ptr<btf, BtfFreer>;

// libbpf's printer writes into a per-thread buffer instead of stderr: a
// worker clears it, calls libbpf, and hands it to JS with a failure.
void InstallLibbpfPrinter();
void ClearLibbpfLog();
const std::string& LibbpfLog();

// strerror(err) for a positive errno, lowercase first letter ("no such file
// or directory"), as messages are "verb noun: cause".
std::string ErrText(int err);

// The running kernel's BTF, read now (btf__load_vmlinux_btf); null and *err
// set when it cannot be read. Several MiB: the table below is what is kept.
BtfPtr LoadVmlinuxBtf(int* err);
// One LSM hook of the running kernel: its bpf_lsm_<hook> FUNC's BTF id.
struct KernelHook {
  uint32_t btfId;
  std::string name;
  bool returnsValue;  // false for void hooks (no verdict)
};
// The hook of that name in the table read from the BTF once (bpf_hooks.cc);
// null, and *err set while the BTF cannot be read.
const KernelHook* FindKernelHook(const std::string& hook, int* err);
// The hook of a vmlinux BTF id ("" for anything else).
std::string HookOfVmlinuxId(uint32_t id);
// What an fentry/fexit link runs on, "fentry:FUNC" / "fexit:FUNC"; "" for
// any other link (bpf_pins.cc). Remembered per function: the first call
// parses BTF, which the load that made the link does on its own thread; a
// listing (on the loop) parses only for a link an earlier daemon made, once.
std::string CompanionOfLink(const bpf_link_info& info);
// What a bpf fd refers to, from its anon inode's name ("anon_inode:bpf-link"):
// "link", "map", "prog", or "" for anything else. BPF_OBJ_GET_INFO_BY_FD
// fills the struct of the object's own type, so this must be known first.
// selfFds: an fd of /proc/self/fd, for a thread whose root is not ours.
std::string BpfFdKind(int fd, int selfFds = -1);

// Open an object from memory (no load): ENOEXEC for anything libbpf cannot open
// (lib/kernel/object.ts elfProblem says why first, from the header).
ObjectPtr OpenObject(const std::vector<uint8_t>& data, const std::string& name, Failure* f);

// Every worker: a Promise settled on the JS thread. `run` runs on a libuv
// thread and never touches N-API; a failure it records becomes a KrsiError.
// Otherwise `done` builds the value on the JS thread. What both need lives in
// what they capture (a shared_ptr when run fills it).
Napi::Promise Work(Napi::Env env, const char* name, std::function<void(Failure*)> run,
                   std::function<Napi::Value(Napi::Env)> done);

struct BpfEnvData;
// The same, on a thread started for this one call and never shared, for work
// that may take long: a verifier run (seconds for a big program under
// emulation), a read from a filesystem that does not answer. libuv's four
// pool threads then stay free for the quick calls every request makes (a
// detach's unlink, link info): those never wait behind a verifier.
// `keepAlive`: the process waits for it, as for pool work (a load: the JS
// that waits settles its pins); a read stuck in a filesystem must not hold
// the daemon's exit (its JS side keeps a timer while anyone waits). `name`
// names the thread (at most 15 characters) and a failure to start one.
Napi::Promise OnOwnThread(Napi::Env env, BpfEnvData* data, const char* name, bool keepAlive,
                          std::function<void(Failure*)> run, std::function<Napi::Value(Napi::Env)> done);

// A program attached by a link of krsifs's own, pinned; as JS gets it
// ({name?, progId, linkId}).
struct Made {
  std::string name;
  uint32_t progId = 0, linkId = 0;
};
Napi::Value MadeValue(Napi::Env env, const Made& m, bool named);

// The own threads' way back to the JS thread (bpf_common.cc).
struct ThreadHub;
// Per-env state of the kernel layer (the opened object's constructor).
struct BpfEnvData {
  Napi::FunctionReference openedCtor;
  std::shared_ptr<ThreadHub> threads;
};

// Every export, registered by InitBpf (bpf_addon.cc).
void InitThreads(Napi::Env env, BpfEnvData* data);
void InitRead(Napi::Env env, Napi::Object exports, BpfEnvData* data);
void InitObject(Napi::Env env, Napi::Object exports, BpfEnvData* data);
void InitLoad(Napi::Env env, Napi::Object exports);
void InitInfo(Napi::Env env, Napi::Object exports);
void InitHooks(Napi::Env env, Napi::Object exports);
void InitProbe(Napi::Env env, Napi::Object exports);
void InitEvents(Napi::Env env, Napi::Object exports);
void InitPins(Napi::Env env, Napi::Object exports);
void InitObserver(Napi::Env env, Napi::Object exports);

}  // namespace krsi
