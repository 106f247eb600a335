// loadAndAttach(data, hook, opts): open an object from its bytes, point every
// LSM program at `hook`, set const volatile globals, load, attach. Its
// fentry/fexit companions attach to the function their section names. All or
// nothing: on any failure every link and the object this call made are closed.
#include <malloc.h>
#include <string.h>

#include "bpf_link.h"
#include "bpf_object.h"

namespace krsi {

namespace {
constexpr size_t kFirstLog = 256u << 10;
constexpr size_t kMaxLog = 16u << 20;

std::vector<std::string> SplitLines(const char* s) {
  std::vector<std::string> out;
  std::string cur;
  for (const char* p = s; *p; p++) {
    if (*p == '\n') {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += *p;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  while (!out.empty() && out.back().empty()) out.pop_back();
  return out;
}

// The line or two of a verifier log that say why, without the statistics the
// kernel prints last, plus how much was left out.
std::string LogSummary(const std::vector<std::string>& log) {
  int end = static_cast<int>(log.size());
  auto isStat = [](const std::string& l) {
    return l.empty() || l.rfind("processed ", 0) == 0 || l.rfind("verification time", 0) == 0 ||
           l.rfind("stack depth", 0) == 0 || l.rfind("-- END PROG LOAD LOG --", 0) == 0;
  };
  while (end > 0 && isStat(log[end - 1])) end--;
  if (end == 0) return "";
  int start = end >= 2 ? end - 2 : 0;
  std::string s;
  for (int i = start; i < end; i++) s += (s.empty() ? "" : " ") + log[i];
  size_t omitted = log.size() - (end - start);
  if (omitted > 0) s += " (" + std::to_string(omitted) + " lines omitted)";
  return s;
}

// The program libbpf was loading when it failed: "prog 'NAME': ..." in its log.
std::string FailedProgram(const std::string& libbpfLog) {
  size_t p = libbpfLog.find("prog '");
  if (p == std::string::npos) return "";
  p += 6;
  size_t q = libbpfLog.find('\'', p);
  return q == std::string::npos ? "" : libbpfLog.substr(p, q - p);
}

struct Attached {
  std::shared_ptr<LinkState> state;
};

class LoadAttachWorker : public PromiseWorker {
 public:
  LoadAttachWorker(Napi::Env env, BpfEnvData* data, std::vector<uint8_t> bytes, std::string hook,
                   std::vector<GlobalValue> globals, std::string objectName,
                   std::vector<std::pair<std::string, std::string>> reuse)
      : PromiseWorker(env, "krsifs:LoadAttachWorker"),
        data_(data),
        bytes_(std::move(bytes)),
        hook_(std::move(hook)),
        globals_(std::move(globals)),
        objectName_(std::move(objectName)),
        reuse_(std::move(reuse)) {}

 protected:
  void Run() override {
    Load();
    // libbpf parsed the kernel's BTF (megabytes) on this thread and freed it:
    // glibc keeps freed memory in the thread's arena, so without a trim each
    // worker thread holds on to its own copy's worth for the process's life
    malloc_trim(0);
  }

  void Load() {
    int err = 0;
    if (!KernelHasHook(hook_, &err)) {
      if (err != 0) {
        failure_.set(err, "load object: cannot read the kernel's BTF (/sys/kernel/btf/vmlinux): " + ErrText(err));
      } else {
        failure_.set(EINVAL, "load object: no LSM hook named '" + hook_ + "' in this kernel (no bpf_lsm_" +
                                 hook_ + " in its BTF)");
        failure_.detailsJson = "{\"hook\":" + JsonString(hook_) + "}";
      }
      return;
    }
    // A load whose verifier log does not fit fails with ENOSPC: open the same
    // bytes again with a bigger buffer (an object loads only once).
    for (size_t logSize = kFirstLog;; logSize *= 4) {
      failure_ = Failure();
      bool retry = Attempt(logSize);
      if (!retry || logSize * 4 > kMaxLog) return;
    }
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Array out = Napi::Array::New(env, attached_.size());
    for (size_t i = 0; i < attached_.size(); i++) {
      const std::shared_ptr<LinkState>& s = attached_[i].state;
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", s->name);
      o.Set("progId", s->progId);
      o.Set("linkId", s->id);
      o.Set("link", NewLink(env, data_, s));
      out.Set(i, o);
    }
    return out;
  }

 private:
  // One open+load+attach; true when it failed with ENOSPC and may be retried.
  bool Attempt(size_t logSize) {
    auto holder = std::make_shared<ObjectHolder>();
    holder->log.assign(logSize, '\0');
    holder->obj = OpenObject(bytes_, objectName_, holder->log.data(), holder->log.size(), &failure_);
    if (!holder->obj) return false;
    bpf_object* obj = holder->obj.get();
    std::string details = "\"hook\":" + JsonString(hook_);

    size_t count = 0;
    bpf_program* p;
    bpf_object__for_each_program(p, obj) {
      std::string name = bpf_program__name(p);
      std::string sec = bpf_program__section_name(p);
      bpf_prog_type t = bpf_program__type(p);
      // fentry/fexit companions keep the target their section names (libbpf resolves it at load)
      if (t == BPF_PROG_TYPE_TRACING && !CompanionOfSection(sec.c_str()).empty()) continue;
      count++;
      if (t != BPF_PROG_TYPE_LSM) {
        const char* ts = libbpf_bpf_prog_type_str(t);
        failure_.set(EINVAL, "load object: program " + name + " is a " + (ts ? ts : "non-LSM") + " program (SEC(\"" +
                                 sec + "\")): an object attached to a hook may hold only LSM programs and " +
                                 "fentry/fexit companions");
        failure_.detailsJson = "{" + details + ",\"program\":" + JsonString(name) + "}";
        return false;
      }
      std::string own = HookOfSection(sec.c_str());
      if (!own.empty() && own != hook_) {
        failure_.set(EINVAL, "load object: program " + name + " is for hook " + own + " (SEC(\"" + sec +
                                 "\")), not for this file's hook " + hook_);
        failure_.detailsJson = "{" + details + ",\"program\":" + JsonString(name) + "}";
        return false;
      }
      if (own.empty()) {
        // SEC("lsm") / SEC("lsm.s"): the file, not the object, picks the hook
        int e = bpf_program__set_attach_target(p, 0, hook_.c_str());
        if (e != 0) {
          failure_.set(-e, "load program " + name + ": set attach target " + hook_ + ": " + ErrText(-e));
          return false;
        }
      }
    }
    if (count == 0) {
      bool companions = bpf_object__next_program(obj, nullptr) != nullptr;
      failure_.set(EINVAL, companions ? "load object: no LSM program in the object (its fentry/fexit companions need one)"
                                      : "load object: no program in the object");
      return false;
    }
    if (!SetGlobals(obj, globals_, &failure_)) return false;
    if (!ReuseMaps(obj, reuse_, &failure_)) return false;

    ClearLibbpfLog();
    int e = bpf_object__load(obj);
    if (e != 0) {
      int err = -e;
      std::vector<std::string> log = SplitLines(holder->log.data());
      bool enospc = err == ENOSPC && !log.empty();
      std::string prog = FailedProgram(LibbpfLog());
      if (prog.empty() && count == 1) prog = bpf_program__name(bpf_object__next_program(obj, nullptr));
      std::string cause = LogSummary(log);
      if (cause.empty()) {
        cause = ErrText(err);
        if (err == EPERM)
          cause += " (BPF LSM programs are not permitted on this kernel, even for root: see `krsifs doctor`)";
        else if (prog.empty() && !LibbpfLastLine().empty())
          cause += " (" + LibbpfLastLine() + ")";
      }
      failure_.set(err, (prog.empty() ? "load object: " : "load program " + prog + ": ") + cause);
      failure_.verifierLog = std::move(log);
      failure_.detailsJson = "{" + details + (prog.empty() ? "" : ",\"program\":" + JsonString(prog)) + "}";
      return enospc;  // the caller retries with a bigger log while it may
    }

    std::vector<Attached> links;
    bpf_object__for_each_program(p, obj) {
      std::string name = bpf_program__name(p);
      std::string companion = CompanionOfSection(bpf_program__section_name(p));
      errno = 0;
      bpf_link* l = companion.empty() ? bpf_program__attach_lsm(p) : bpf_program__attach_trace(p);
      if (l == nullptr) {
        int err = errno ? errno : EINVAL;
        std::string cause = ErrText(err);
        if (err == E2BIG)
          cause += companion.empty() ? " (the kernel's limit of programs on one hook is reached)"
                                     : " (the kernel's limit of programs on one function is reached)";
        failure_.set(err, "attach program " + name + " to " + (companion.empty() ? hook_ : companion) + ": " + cause);
        failure_.detailsJson = "{" + details + ",\"program\":" + JsonString(name) + "}";
        return false;  // links and holder go out of scope: everything detached, object closed
      }
      auto s = std::make_shared<LinkState>();
      s->link.reset(l);
      s->object = holder;
      s->name = name;
      int ie = ReadLinkIds(s.get());
      if (ie != 0) {
        failure_.set(ie, "attach program " + name + ": read link info: " + ErrText(ie));
        return false;
      }
      links.push_back({s});
    }
    attached_ = std::move(links);
    return false;
  }

  BpfEnvData* data_;
  std::vector<uint8_t> bytes_;
  std::string hook_;
  std::vector<GlobalValue> globals_;
  std::string objectName_;
  std::vector<std::pair<std::string, std::string>> reuse_;
  std::vector<Attached> attached_;
};

Napi::Value LoadAndAttach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<uint8_t> bytes;
  if (!CopyBytes(env, info[0], "loadAndAttach", &bytes)) return env.Undefined();
  if (info.Length() < 2 || !info[1].IsString()) {
    Napi::TypeError::New(env, "loadAndAttach(data: Buffer, hook: string, opts?)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string hook = info[1].As<Napi::String>().Utf8Value();
  std::vector<GlobalValue> globals;
  std::string objectName;
  std::vector<std::pair<std::string, std::string>> reuse;
  if (info.Length() > 2 && info[2].IsObject()) {
    Napi::Object opts = info[2].As<Napi::Object>();
    Napi::Value on = opts.Get("objectName");
    if (on.IsString()) objectName = on.As<Napi::String>().Utf8Value();
    if (!ParseGlobals(env, opts.Get("globals"), "loadAndAttach", &globals)) return env.Undefined();
    if (!ParseReuseMaps(env, opts.Get("reuseMaps"), "loadAndAttach", &reuse)) return env.Undefined();
  }
  auto* data = static_cast<BpfEnvData*>(info.Data());
  return (new LoadAttachWorker(env, data, std::move(bytes), hook, std::move(globals), objectName, std::move(reuse)))
      ->Queue();
}

// attachProgram(id, hook, pinPath): a program another loader loaded (a pin,
// an id, a writer's fd) attached to `hook` by a link of krsifs's own,
// pinned at pinPath. The program must be an LSM program loaded for this
// very hook (its attach_btf_id, fixed at load). The caller opens the pin.
class AttachProgramWorker : public PromiseWorker {
 public:
  AttachProgramWorker(Napi::Env env, uint32_t id, std::string hook, std::string pinPath)
      : PromiseWorker(env, "krsifs:AttachProgramWorker"), id_(id), hook_(std::move(hook)), pinPath_(std::move(pinPath)) {}

 protected:
  void Run() override {
    std::string what = "attach program " + std::to_string(id_);
    std::string details = "\"hook\":" + JsonString(hook_) + ",\"progId\":" + std::to_string(id_);
    UniqueFd fd(bpf_prog_get_fd_by_id(id_));
    if (!fd.valid()) {
      int e = errno;
      failure_.set(e, what + ": " + (e == ENOENT ? std::string("no loaded program has this id") : ErrText(e)));
      failure_.detailsJson = "{" + details + "}";
      return;
    }
    bpf_prog_info info = {};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0) {
      failure_.set(errno, what + ": program info: " + ErrText(errno));
      return;
    }
    name_ = info.name;
    what += " (" + name_ + ")";
    details += ",\"program\":" + JsonString(name_);
    if (info.type != BPF_PROG_TYPE_LSM) {
      const char* ts = libbpf_bpf_prog_type_str(static_cast<bpf_prog_type>(info.type));
      failure_.set(EINVAL, what + ": a " + std::string(ts ? ts : "non-LSM") + " program, not an LSM program");
      failure_.detailsJson = "{" + details + "}";
      return;
    }
    std::string own = HookOfVmlinuxId(info.attach_btf_id);
    if (own != hook_) {
      failure_.set(EINVAL, what + ": loaded for hook " + (own.empty() ? "? (attach_btf_id " + std::to_string(info.attach_btf_id) + ")" : own) +
                               ", not for this file's hook " + hook_ + " (a loaded program's hook is fixed at load)");
      failure_.detailsJson = "{" + details + ",\"programHook\":" + JsonString(own) + "}";
      return;
    }
    UniqueFd link(bpf_link_create(fd.get(), 0, BPF_LSM_MAC, nullptr));
    if (!link.valid()) {
      int e = errno;
      std::string cause = ErrText(e);
      if (e == EINVAL) cause += " (its expected attach type is not lsm_mac: an lsm_cgroup program?)";
      if (e == E2BIG) cause += " (the kernel's limit of programs on one hook is reached)";
      if (e == EBUSY)
        cause += " (the program is attached to this hook already, by krsifs or by its loader: the kernel links a "
                 "program to a hook once; detach that link first)";
      failure_.set(e, what + ": link to " + hook_ + " as BPF_LSM_MAC: " + cause);
      failure_.detailsJson = "{" + details + "}";
      return;
    }
    bpf_link_info li = {};
    len = sizeof(li);
    if (bpf_obj_get_info_by_fd(link.get(), &li, &len) != 0) {
      failure_.set(errno, what + ": link info: " + ErrText(errno));
      return;
    }
    linkId_ = li.id;
    if (bpf_obj_pin(link.get(), pinPath_.c_str()) != 0) {
      int e = errno;
      failure_.set(e, what + ": pin its link at " + pinPath_ + ": " + ErrText(e));
      failure_.detailsJson = "{" + details + "}";
      return;  // our fd closes: the link is gone
    }
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", name_);
    o.Set("progId", id_);
    o.Set("linkId", linkId_);
    return o;
  }

 private:
  uint32_t id_;
  std::string hook_;
  std::string pinPath_;
  std::string name_;
  uint32_t linkId_ = 0;
};

Napi::Value AttachProgram(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsString() || !info[2].IsString()) {
    Napi::TypeError::New(env, "attachProgram(id: number, hook: string, pinPath: string)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  double id = info[0].As<Napi::Number>().DoubleValue();
  if (!(id >= 1 && id <= 4294967295.0) || id != static_cast<double>(static_cast<uint32_t>(id))) {
    Napi::TypeError::New(env, "attachProgram: id must be a program id").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return (new AttachProgramWorker(env, static_cast<uint32_t>(id), info[1].As<Napi::String>().Utf8Value(),
                                  info[2].As<Napi::String>().Utf8Value()))
      ->Queue();
}
}  // namespace

bool ReuseMaps(bpf_object* obj, const std::vector<std::pair<std::string, std::string>>& reuse, Failure* f) {
  for (const auto& [name, path] : reuse) {
    bpf_map* m = bpf_object__find_map_by_name(obj, name.c_str());
    if (m == nullptr) continue;
    UniqueFd fd(bpf_obj_get(path.c_str()));
    if (!fd.valid()) {
      int err = errno;
      f->set(err, "load object: map " + name + ": open the shared map " + path + ": " + ErrText(err));
      return false;
    }
    int e = bpf_map__reuse_fd(m, fd.get());  // dups the fd
    if (e != 0) {
      f->set(-e, "load object: map " + name + ": reuse the shared map " + path + ": " + ErrText(-e));
      return false;
    }
  }
  return true;
}

bool ParseGlobals(Napi::Env env, Napi::Value g, const char* what, std::vector<GlobalValue>* out) {
  if (!g.IsObject()) return true;
  Napi::Object go = g.As<Napi::Object>();
  Napi::Array keys = go.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); i++) {
    GlobalValue v;
    v.name = keys.Get(i).ToString().Utf8Value();
    Napi::Value val = go.Get(v.name);
    if (val.IsNumber()) {
      v.isNumber = true;
      v.number = val.As<Napi::Number>().DoubleValue();
    } else if (val.IsString()) {
      v.text = val.As<Napi::String>().Utf8Value();
    } else {
      Napi::TypeError::New(env, std::string(what) + ": global " + v.name + " must be a string or a number")
          .ThrowAsJavaScriptException();
      return false;
    }
    out->push_back(std::move(v));
  }
  return true;
}

bool ParseReuseMaps(Napi::Env env, Napi::Value rm, const char* what, std::vector<std::pair<std::string, std::string>>* out) {
  if (!rm.IsObject()) return true;
  Napi::Object ro = rm.As<Napi::Object>();
  Napi::Array keys = ro.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); i++) {
    std::string name = keys.Get(i).ToString().Utf8Value();
    Napi::Value path = ro.Get(name);
    if (!path.IsString()) {
      Napi::TypeError::New(env, std::string(what) + ": reuseMaps." + name + " must be a pinned path").ThrowAsJavaScriptException();
      return false;
    }
    out->emplace_back(name, path.As<Napi::String>().Utf8Value());
  }
  return true;
}

void InitLoad(Napi::Env env, Napi::Object exports, BpfEnvData* data) {
  exports.Set("loadAndAttach", Napi::Function::New(env, LoadAndAttach, "loadAndAttach", data));
  exports.Set("attachProgram", Napi::Function::New(env, AttachProgram, "attachProgram"));
}

}  // namespace krsi
