// attachProgram(id, hook, pinPath): a program another loader loaded, attached
// by a link of krsifs's own and pinned; attachPinnedTrace: the observer's
// kept program linked again. Objects load through their opened handle
// (bpf_object.cc).
#include "bpf_common.h"

namespace krsi {

namespace {
// A link just made: read its ids and pin it at `pinPath`. On failure our fd
// closes with `link`'s owner, and the link is gone.
bool PinNewLink(const UniqueFd& link, const std::string& pinPath, const std::string& what, Failure* f, bpf_link_info* li) {
  uint32_t len = sizeof(*li);
  if (bpf_obj_get_info_by_fd(link.get(), li, &len) != 0) {
    f->set(errno, what + ": link info: " + ErrText(errno));
    return false;
  }
  if (bpf_obj_pin(link.get(), pinPath.c_str()) != 0) {
    f->set(errno, what + ": pin its link at " + pinPath + ": " + ErrText(errno));
    return false;
  }
  return true;
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
    failure_.detail("hook", hook_).detail("progId", id_);
    UniqueFd fd(bpf_prog_get_fd_by_id(id_));
    if (!fd.valid()) {
      int e = errno;
      failure_.set(e, what + ": " + (e == ENOENT ? std::string("no loaded program has this id") : ErrText(e)));
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
    failure_.detail("program", name_);
    if (info.type != BPF_PROG_TYPE_LSM) {
      const char* ts = libbpf_bpf_prog_type_str(static_cast<bpf_prog_type>(info.type));
      failure_.set(EINVAL, what + ": a " + std::string(ts ? ts : "non-LSM") + " program, not an LSM program");
      return;
    }
    std::string own = HookOfVmlinuxId(info.attach_btf_id);
    if (own != hook_) {
      failure_.set(EINVAL, what + ": loaded for hook " + (own.empty() ? "? (attach_btf_id " + std::to_string(info.attach_btf_id) + ")" : own) +
                               ", not for this file's hook " + hook_ + " (a loaded program's hook is fixed at load)");
      failure_.detail("programHook", own);
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
      return;
    }
    bpf_link_info li = {};
    if (PinNewLink(link, pinPath_, what, &failure_, &li)) linkId_ = li.id;
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

// attachPinnedTrace(progPin, linkPin): a tracing program krsifs loaded and
// pinned itself (the denial observer's), linked again to the function it was
// loaded for, the link pinned at linkPin: no second verifier run.
class AttachPinnedTraceWorker : public PromiseWorker {
 public:
  AttachPinnedTraceWorker(Napi::Env env, std::string progPin, std::string linkPin)
      : PromiseWorker(env, "krsifs:AttachPinnedTraceWorker"), progPin_(std::move(progPin)), linkPin_(std::move(linkPin)) {}

 protected:
  void Run() override {
    std::string what = "attach the program pinned at " + progPin_;
    UniqueFd prog(bpf_obj_get(progPin_.c_str()));
    if (!prog.valid()) {
      failure_.set(errno, what + ": " + ErrText(errno));
      return;
    }
    UniqueFd link(bpf_link_create(prog.get(), 0, BPF_TRACE_FEXIT, nullptr));
    if (!link.valid()) {
      int e = errno;
      failure_.set(e, what + ": link it as BPF_TRACE_FEXIT: " + ErrText(e) +
                          (e == E2BIG ? " (the kernel's limit of programs on one hook is reached)" : ""));
      return;
    }
    bpf_link_info li = {};
    if (!PinNewLink(link, linkPin_, what, &failure_, &li)) return;
    progId_ = li.prog_id;
    linkId_ = li.id;
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("progId", progId_);
    o.Set("linkId", linkId_);
    return o;
  }

 private:
  std::string progPin_, linkPin_;
  uint32_t progId_ = 0, linkId_ = 0;
};

Napi::Value AttachPinnedTrace(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsString()) {
    Napi::TypeError::New(env, "attachPinnedTrace(progPin: string, linkPin: string)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return (new AttachPinnedTraceWorker(env, info[0].As<Napi::String>().Utf8Value(), info[1].As<Napi::String>().Utf8Value()))
      ->Queue();
}

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

void InitLoad(Napi::Env env, Napi::Object exports) {
  exports.Set("attachProgram", Napi::Function::New(env, AttachProgram, "attachProgram"));
  exports.Set("attachPinnedTrace", Napi::Function::New(env, AttachPinnedTrace, "attachPinnedTrace"));
}

}  // namespace krsi
