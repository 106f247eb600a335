// pinnedLinks(dir, objectsDir): every link pinned in one bpffs directory, with
// what a listing needs, synchronously, on the calling (JS) thread: a
// behaviour's directory holds at most its hook's links (the kernel's limit,
// 38 on 6.1 and 6.12) and their NAME-new twins during an attach, all in
// memory under the daemon's own 0700 pin root, five syscalls each, so a read
// costs less than the hand-off to a pool thread, where four slow loads may
// hold every thread (the bound and the decision: lib/kernel/port.ts list).
// pinInfo(path): the same for one pin, in one worker.
#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>

#include "bpf_common.h"

namespace krsi {

namespace {
struct Pinned {
  std::string name;
  uint32_t linkId = 0;
  uint32_t progId = 0;
  std::string hook;
  std::string object;
  bool hasObject = false;
  // Why this pin is not an LSM link or a companion ("a map", "a program", "a
  // cgroup_skb link", …); empty for those. Such pins are someone else's: listed
  // apart, never managed.
  std::string foreign;
};

// What the kernel says about the pin at `path`: false with *err set when it
// cannot be opened or read (ENOENT: removed meanwhile); true otherwise, with
// p->foreign set for a pin that is not krsifs's kind of link.
// selfFds: /proc/self/fd opened once per listing (-1: opened per call).
bool DescribePin(const std::string& path, Pinned* p, int* err, int selfFds = -1) {
  UniqueFd fd(bpf_obj_get(path.c_str()));
  if (!fd.valid()) {
    *err = errno;
    if (errno == ENOENT) return false;
    // a directory or anything bpf_obj_get refuses: someone else's
    p->foreign = "not a bpf object (" + ErrText(errno) + ")";
    return true;
  }
  std::string kind = BpfFdKind(fd.get(), selfFds);
  if (kind != "link") {
    p->foreign = kind.empty() ? "not a bpf object" : "a " + kind;
    return true;
  }
  bpf_link_info info = {};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0) {
    *err = errno;
    return false;
  }
  p->linkId = info.id;
  p->progId = info.prog_id;
  std::string companion = CompanionOfLink(info);
  if (!companion.empty()) {
    p->hook = companion;  // an object's fentry/fexit program, pinned with its LSM programs
  } else if (info.type != BPF_LINK_TYPE_TRACING || info.tracing.attach_type != BPF_LSM_MAC) {
    p->foreign = "a link that is neither an LSM link nor an fentry/fexit companion (link id " + std::to_string(info.id) + ")";
  } else {
    p->hook = HookOfVmlinuxId(info.tracing.target_btf_id);
  }
  return true;
}

Napi::Value HookValue(Napi::Env env, const Pinned& p) {
  return p.hook.empty() ? env.Null() : Napi::Value(Napi::String::New(env, p.hook));
}

struct DirCloser {
  void operator()(DIR* d) const { closedir(d); }
};

// Every pin of `dir` (none when it does not exist), in link id order; pins
// removed meanwhile are left out. Returns false with *f set when the
// directory cannot be read.
bool ListPins(const std::string& dir, const std::string& objects, std::vector<Pinned>* pins, Failure* f) {
  std::unique_ptr<DIR, DirCloser> d(opendir(dir.c_str()));
  if (!d) {
    if (errno == ENOENT) return true;  // no directory: nothing pinned
    f->set(errno, "read pin directory " + dir + ": " + ErrText(errno));
    return false;
  }
  UniqueFd selfFds(open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC));
  while (dirent* e = readdir(d.get())) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    Pinned p;
    p.name = e->d_name;
    int err = 0;
    if (!DescribePin(dir + "/" + p.name, &p, &err, selfFds.get())) continue;  // removed since readdir: not listed
    if (p.foreign.empty() && !objects.empty()) {
      char buf[4096];
      ssize_t n = readlink((objects + "/" + std::to_string(p.linkId)).c_str(), buf, sizeof(buf) - 1);
      if (n > 0) {
        p.object.assign(buf, n);
        p.hasObject = true;
      }
    }
    pins->push_back(std::move(p));
  }
  std::sort(pins->begin(), pins->end(), [](const Pinned& a, const Pinned& b) { return a.linkId < b.linkId; });
  return true;
}

class PinInfoWorker : public PromiseWorker {
 public:
  PinInfoWorker(Napi::Env env, std::string path) : PromiseWorker(env, "krsifs:PinInfoWorker"), path_(std::move(path)) {}

 protected:
  void Run() override {
    int err = 0;
    if (!DescribePin(path_, &pin_, &err)) {
      failure_.set(err, "open pin " + path_ + ": " + ErrText(err));
    } else if (!pin_.foreign.empty()) {
      failure_.set(EINVAL, "open pin " + path_ + ": " + pin_.foreign);
    }
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("linkId", pin_.linkId);
    o.Set("progId", pin_.progId);
    o.Set("hook", HookValue(env, pin_));
    return o;
  }

 private:
  std::string path_;
  Pinned pin_;
};

Napi::Value PinnedLinks(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString() || (info.Length() > 1 && !info[1].IsString())) {
    Napi::TypeError::New(env, "pinnedLinks(dir: string, objectsDir?: string)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::vector<Pinned> pins;
  Failure f;
  if (!ListPins(info[0].As<Napi::String>().Utf8Value(), info.Length() > 1 ? info[1].As<Napi::String>().Utf8Value() : "", &pins, &f)) {
    ThrowError(env, f.err, f.message);
    return env.Undefined();
  }
  Napi::Array out = Napi::Array::New(env, pins.size());
  for (size_t i = 0; i < pins.size(); i++) {
    const Pinned& p = pins[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", p.name);
    o.Set("linkId", p.linkId);
    o.Set("progId", p.progId);
    o.Set("hook", HookValue(env, p));
    o.Set("object", p.hasObject ? Napi::Value(Napi::String::New(env, p.object)) : env.Null());
    if (!p.foreign.empty()) o.Set("foreign", p.foreign);
    out.Set(i, o);
  }
  return out;
}

Napi::Value PinInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "pinInfo(path: string)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return (new PinInfoWorker(env, info[0].As<Napi::String>().Utf8Value()))->Queue();
}
}  // namespace

void InitPins(Napi::Env env, Napi::Object exports) {
  exports.Set("pinnedLinks", Napi::Function::New(env, PinnedLinks, "pinnedLinks"));
  exports.Set("pinInfo", Napi::Function::New(env, PinInfo, "pinInfo"));
}

}  // namespace krsi
