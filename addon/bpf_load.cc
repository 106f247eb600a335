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
void AttachLoaded(uint32_t id, const std::string& hook, const std::string& pinPath, Made* made, Failure* f) {
  std::string what = "attach program " + std::to_string(id);
  f->detail("hook", hook).detail("progId", id);
  made->progId = id;
  UniqueFd fd(bpf_prog_get_fd_by_id(id));
  if (!fd.valid()) {
    int e = errno;
    f->set(e, what + ": " + (e == ENOENT ? std::string("no loaded program has this id") : ErrText(e)));
    return;
  }
  bpf_prog_info info = {};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0) {
    f->set(errno, what + ": program info: " + ErrText(errno));
    return;
  }
  made->name = info.name;
  what += " (" + made->name + ")";
  f->detail("program", made->name);
  if (info.type != BPF_PROG_TYPE_LSM) {
    const char* ts = libbpf_bpf_prog_type_str(static_cast<bpf_prog_type>(info.type));
    f->set(EINVAL, what + ": a " + std::string(ts ? ts : "non-LSM") + " program, not an LSM program");
    return;
  }
  std::string own = HookOfVmlinuxId(info.attach_btf_id);
  if (own != hook) {
    f->set(EINVAL, what + ": loaded for hook " + (own.empty() ? "? (attach_btf_id " + std::to_string(info.attach_btf_id) + ")" : own) +
                       ", not for this file's hook " + hook + " (a loaded program's hook is fixed at load)");
    f->detail("programHook", own);
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
    f->set(e, what + ": link to " + hook + " as BPF_LSM_MAC: " + cause);
    return;
  }
  bpf_link_info li = {};
  if (PinNewLink(link, pinPath, what, f, &li)) made->linkId = li.id;
}

// attachPinnedTrace(progPin, linkPin): a tracing program krsifs loaded and
// pinned itself (the denial observer's), linked again to the function it was
// loaded for, the link pinned at linkPin: no second verifier run.
void AttachPinnedTrace(const std::string& progPin, const std::string& linkPin, Made* made, Failure* f) {
  std::string what = "attach the program pinned at " + progPin;
  UniqueFd prog(bpf_obj_get(progPin.c_str()));
  if (!prog.valid()) {
    f->set(errno, what + ": " + ErrText(errno));
    return;
  }
  UniqueFd link(bpf_link_create(prog.get(), 0, BPF_TRACE_FEXIT, nullptr));
  if (!link.valid()) {
    int e = errno;
    f->set(e, what + ": link it as BPF_TRACE_FEXIT: " + ErrText(e) +
                  (e == E2BIG ? " (the kernel's limit of programs on one hook is reached)" : ""));
    return;
  }
  bpf_link_info li = {};
  if (!PinNewLink(link, linkPin, what, f, &li)) return;
  made->progId = li.prog_id;
  made->linkId = li.id;
}

Napi::Value AttachPinnedTraceJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsString()) {
    Napi::TypeError::New(env, "attachPinnedTrace(progPin: string, linkPin: string)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string progPin = info[0].As<Napi::String>().Utf8Value(), linkPin = info[1].As<Napi::String>().Utf8Value();
  auto m = std::make_shared<Made>();
  return Work(env, "krsifs:attachPinnedTrace", [=](Failure* f) { AttachPinnedTrace(progPin, linkPin, m.get(), f); },
              [m](Napi::Env env) { return MadeValue(env, *m, false); });
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
  std::string hook = info[1].As<Napi::String>().Utf8Value(), pin = info[2].As<Napi::String>().Utf8Value();
  auto m = std::make_shared<Made>();
  return Work(env, "krsifs:attachProgram",
              [=](Failure* f) { AttachLoaded(static_cast<uint32_t>(id), hook, pin, m.get(), f); },
              [m](Napi::Env env) { return MadeValue(env, *m, true); });
}
}  // namespace

void InitLoad(Napi::Env env, Napi::Object exports) {
  exports.Set("attachProgram", Napi::Function::New(env, AttachProgram, "attachProgram"));
  exports.Set("attachPinnedTrace", Napi::Function::New(env, AttachPinnedTraceJs, "attachPinnedTrace"));
}

}  // namespace krsi
