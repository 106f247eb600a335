// kernelHooks(btfPath?): every LSM hook a kernel offers, from its BTF: the
// FUNC types named bpf_lsm_<hook>, prefix stripped, sorted.
#include <algorithm>

#include "bpf_common.h"

namespace krsi {

namespace {
// The hooks of the BTF at `path` (the running kernel's table when empty),
// sorted and unique.
void HooksOf(const std::string& path, std::vector<std::string>* hooks, Failure* f) {
  int err = 0;
  if (path.empty()) {
    if (const std::vector<KernelHook>* table = KernelHookTable(&err))
      for (const KernelHook& h : *table) hooks->push_back(h.name);
  } else {
    errno = 0;
    BtfPtr b(btf__parse(path.c_str(), nullptr));
    err = b ? 0 : errno ? errno : EINVAL;
    for (uint32_t id = 1; b && id < btf__type_cnt(b.get()); id++) {
      std::string hook = HookOfFunc(b.get(), btf__type_by_id(b.get(), id));
      if (!hook.empty()) hooks->push_back(hook);
    }
  }
  if (err != 0) {
    std::string where = path.empty() ? "/sys/kernel/btf/vmlinux" : path;
    f->set(err, "read kernel BTF " + where + ": " + ErrText(err) +
                    (err == ENOENT && path.empty() ? " (the kernel was built without CONFIG_DEBUG_INFO_BTF)" : ""));
  }
  std::sort(hooks->begin(), hooks->end());
  hooks->erase(std::unique(hooks->begin(), hooks->end()), hooks->end());
}

Napi::Value KernelHooks(const Napi::CallbackInfo& info) {
  std::string path = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  auto hooks = std::make_shared<std::vector<std::string>>();
  return Work(info.Env(), "krsifs:kernelHooks", [path, hooks](Failure* f) { HooksOf(path, hooks.get(), f); },
              [hooks](Napi::Env env) {
                Napi::Array a = Napi::Array::New(env, hooks->size());
                for (size_t i = 0; i < hooks->size(); i++) a.Set(i, (*hooks)[i]);
                return a;
              });
}
}  // namespace

void InitBtf(Napi::Env env, Napi::Object exports) {
  exports.Set("kernelHooks", Napi::Function::New(env, KernelHooks, "kernelHooks"));
}

}  // namespace krsi
