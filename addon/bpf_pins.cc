// dirsGeneration(dirs): a number that changes whenever an entry of one of
// `dirs` is created, removed or renamed (inotify), or -1 when one cannot be
// watched; lib/kernel/kept-listings.ts keeps a listing while it holds.
// pinnedLinks(dir, objectsDir): every link pinned in one bpffs directory, with
// what a listing needs, synchronously, on the calling (JS) thread: a
// behaviour's directory holds at most its hook's links (the kernel's limit,
// 38 on 6.1 and 6.12) and their NAME-new twins during an attach, all in
// memory under the daemon's own 0700 pin root, five syscalls each, so a read
// costs less than the hand-off to a pool thread and back (the bound and the
// decision: lib/kernel/port.ts list).
#include <dirent.h>
#include <fcntl.h>
#include <sys/inotify.h>
#include <string.h>
#include <unistd.h>

#include <malloc.h>

#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>
#include <mutex>

#include "bpf_common.h"

namespace krsi {

namespace {
// The name of FUNC `id` in BTF object `objId` (vmlinux's, or a module's:
// split BTF on top of vmlinux's); "" when it cannot be read.
std::string TracedFunction(uint32_t objId, uint32_t id) {
  int err = 0;
  BtfPtr vmlinux = LoadVmlinuxBtf(&err), module;
  if (!vmlinux) return "";
  const btf* b = vmlinux.get();
  UniqueFd fd(bpf_btf_get_fd_by_id(objId));
  char name[64] = "";
  bpf_btf_info bi = {};
  bi.name = reinterpret_cast<uintptr_t>(name);
  bi.name_len = sizeof(name);
  uint32_t len = sizeof(bi);
  if (fd.valid() && bpf_obj_get_info_by_fd(fd.get(), &bi, &len) == 0 && strcmp(name, "vmlinux") != 0) {
    module.reset(btf__load_from_kernel_by_id_split(objId, vmlinux.get()));
    if (!module) return "";
    b = module.get();
  }
  const btf_type* t = id != 0 && id < btf__type_cnt(b) ? btf__type_by_id(b, id) : nullptr;
  const char* fn = t && btf_is_func(t) ? btf__name_by_offset(b, t->name_off) : nullptr;
  return fn ? fn : "";
}
}  // namespace

std::string CompanionOfLink(const bpf_link_info& info) {
  if (info.type != BPF_LINK_TYPE_TRACING) return "";
  const char* kind = info.tracing.attach_type == BPF_TRACE_FENTRY  ? "fentry"
                     : info.tracing.attach_type == BPF_TRACE_FEXIT ? "fexit"
                                                                   : nullptr;
  if (kind == nullptr) return "";
  // BTF object ids are not reused while the kernel runs: (object, id) names
  // one function for good. The lock is not held while BTF is parsed, so a
  // listing on the loop never waits for a pool thread's parse.
  static std::mutex mu;
  static std::map<std::pair<uint32_t, uint32_t>, std::string> names;
  const auto key = std::make_pair(info.tracing.target_obj_id, info.tracing.target_btf_id);
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = names.find(key);
    if (it != names.end()) return std::string(kind) + ":" + it->second;
  }
  std::string fn = TracedFunction(key.first, key.second);
  malloc_trim(0);  // the parse's megabytes, handed back
  if (fn.empty()) return std::string(kind) + ":?";  // not remembered: tried again
  std::lock_guard<std::mutex> lock(mu);
  names.emplace(key, fn);
  return std::string(kind) + ":" + fn;
}

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

// What the kernel says about the pin at `path`: false when it is gone (removed
// meanwhile) or its link cannot be read; true otherwise, with p->foreign set
// for a pin that is not krsifs's kind of link.
// selfFds: /proc/self/fd, opened once per listing.
bool DescribePin(const std::string& path, Pinned* p, int selfFds) {
  UniqueFd fd(bpf_obj_get(path.c_str()));
  if (!fd.valid()) {
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
  if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0) return false;
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

struct DirCloser {
  void operator()(DIR* d) const { closedir(d); }
};

// Every pin in `dir`, sorted by link id; a missing directory holds none.
void ReadPinDir(const std::string& dir, const std::string& objects, std::vector<Pinned>* pins, Failure* f) {
  std::unique_ptr<DIR, DirCloser> d(opendir(dir.c_str()));
  if (!d) {
    if (errno != ENOENT) f->set(errno, "read pin directory " + dir + ": " + ErrText(errno));
    return;
  }
  UniqueFd selfFds(open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC));
  while (dirent* e = readdir(d.get())) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    Pinned p;
    p.name = e->d_name;
    if (!DescribePin(dir + "/" + p.name, &p, selfFds.get())) continue;  // removed since readdir: not listed
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
}

// The kernel queues an inotify event inside the syscall that changed the
// directory, after the change is visible: an event not read yet when a
// listing starts is one that the listing may have missed, and it is read by
// the next call. Renames of the directory itself, its removal, an unmount and
// a lost event (the queue overflowed) change every number. Not seen: a mount
// over the path or a rename of a directory above the watched ones, which take
// root on the daemon's own 0700 pin root.
class DirWatch {
 public:
  // Each number comes from one counter that only grows, and a directory's
  // only changes to a new top value: the largest of a set changes whenever
  // one of its members does.
  double Generation(const std::vector<std::string>& dirs) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!fd_.valid()) fd_.reset(inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
    if (!fd_.valid()) return -1;
    Drain();
    double top = 0;
    for (const std::string& dir : dirs) {
      double g = Watched(dir);
      if (g < 0) return -1;
      top = std::max(top, g);
    }
    return top;
  }

 private:
  void Drain() {
    alignas(inotify_event) char buf[4096];
    ssize_t n;
    while ((n = read(fd_.get(), buf, sizeof(buf))) > 0) {
      for (char* p = buf; p < buf + n; p += sizeof(inotify_event) + reinterpret_cast<inotify_event*>(p)->len) {
        const inotify_event* e = reinterpret_cast<inotify_event*>(p);
        if (e->mask & IN_Q_OVERFLOW) {
          Forget();
          continue;
        }
        auto w = dirs_.find(e->wd);
        if (w == dirs_.end()) continue;  // a watch forgotten already (Forget's own IN_IGNORED)
        if (e->mask & (IN_MOVE_SELF | IN_DELETE_SELF | IN_IGNORED | IN_UNMOUNT)) {
          Forget();
          continue;
        }
        for (const std::string& dir : w->second) gens_[dir] = ++counter_;
      }
    }
  }

  double Watched(const std::string& dir) {
    auto it = gens_.find(dir);
    if (it != gens_.end()) return it->second;
    int wd = inotify_add_watch(fd_.get(), dir.c_str(),
                               IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF |
                                   IN_ONLYDIR | IN_DONT_FOLLOW);
    if (wd < 0) return -1;
    dirs_[wd].insert(dir);
    return gens_[dir] = ++counter_;
  }

  // A watched directory moved or went, or events were lost: every path is
  // watched again at its next call, on what it names then, with a new number
  // (a path's watch follows the inode, not the name).
  void Forget() {
    for (const auto& w : dirs_) inotify_rm_watch(fd_.get(), w.first);
    dirs_.clear();
    gens_.clear();
  }

  std::mutex mu_;
  UniqueFd fd_;
  double counter_ = 0;
  std::unordered_map<int, std::set<std::string>> dirs_;  // by watch descriptor
  std::map<std::string, double> gens_;
};

Napi::Value DirsGeneration(const Napi::CallbackInfo& info) {
  static DirWatch* watch = new DirWatch();  // the process's, never freed: no env owns it
  Napi::Env env = info.Env();
  std::vector<std::string> dirs;
  if (info.Length() == 1 && info[0].IsArray()) {
    Napi::Array a = info[0].As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) {
      Napi::Value v = a.Get(i);
      if (!v.IsString()) break;
      dirs.push_back(v.As<Napi::String>().Utf8Value());
    }
    if (dirs.size() != a.Length()) dirs.clear();
  }
  if (dirs.empty()) {
    Napi::TypeError::New(env, "dirsGeneration(dirs: string[]), at least one").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, watch->Generation(dirs));
}

Napi::Value PinnedLinks(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString() || (info.Length() > 1 && !info[1].IsString())) {
    Napi::TypeError::New(env, "pinnedLinks(dir: string, objectsDir?: string)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string dir = info[0].As<Napi::String>().Utf8Value();
  std::string objects = info.Length() > 1 ? info[1].As<Napi::String>().Utf8Value() : "";
  std::vector<Pinned> pins;
  Failure f;
  ReadPinDir(dir, objects, &pins, &f);
  if (f.failed()) {
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
    o.Set("hook", p.hook.empty() ? env.Null() : Napi::Value(Napi::String::New(env, p.hook)));
    o.Set("object", p.hasObject ? Napi::Value(Napi::String::New(env, p.object)) : env.Null());
    if (!p.foreign.empty()) o.Set("foreign", p.foreign);
    out.Set(i, o);
  }
  return out;
}

}  // namespace

void InitPins(Napi::Env env, Napi::Object exports) {
  exports.Set("pinnedLinks", Napi::Function::New(env, PinnedLinks, "pinnedLinks"));
  exports.Set("dirsGeneration", Napi::Function::New(env, DirsGeneration, "dirsGeneration"));
}

}  // namespace krsi
