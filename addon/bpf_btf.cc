// kernelHooks(btfPath?): every LSM hook a kernel offers, from its BTF: the
// FUNC types named bpf_lsm_<hook>, prefix stripped, sorted.
#include <string.h>

#include <algorithm>

#include "bpf_common.h"

namespace krsi {

namespace {
class KernelHooksWorker : public PromiseWorker {
 public:
  KernelHooksWorker(Napi::Env env, std::string path)
      : PromiseWorker(env, "krsifs:KernelHooksWorker"), path_(std::move(path)) {}

 protected:
  void Run() override {
    BtfPtr own;
    const btf* b = nullptr;
    int err = 0;
    if (path_.empty()) {
      // the running kernel's: its table, read once (bpf_hooks.cc)
      const std::vector<KernelHook>* table = KernelHookTable(&err);
      if (table != nullptr) {
        for (const KernelHook& h : *table) hooks_.push_back(h.name);
        std::sort(hooks_.begin(), hooks_.end());
        hooks_.erase(std::unique(hooks_.begin(), hooks_.end()), hooks_.end());
        return;
      }
    } else {
      errno = 0;
      own.reset(btf__parse(path_.c_str(), nullptr));
      b = own.get();
      if (!b) err = errno ? errno : EINVAL;
    }
    if (b == nullptr) {
      std::string where = path_.empty() ? "/sys/kernel/btf/vmlinux" : path_;
      failure_.set(err, "read kernel BTF " + where + ": " + ErrText(err) +
                            (err == ENOENT && path_.empty() ? " (the kernel was built without CONFIG_DEBUG_INFO_BTF)" : ""));
      return;
    }
    uint32_t n = btf__type_cnt(b);
    for (uint32_t id = 1; id < n; id++) {
      const btf_type* t = btf__type_by_id(b, id);
      std::string hook = HookOfFunc(b, t);
      if (!hook.empty()) hooks_.push_back(hook);
    }
    std::sort(hooks_.begin(), hooks_.end());
    hooks_.erase(std::unique(hooks_.begin(), hooks_.end()), hooks_.end());
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Array a = Napi::Array::New(env, hooks_.size());
    for (size_t i = 0; i < hooks_.size(); i++) a.Set(i, hooks_[i]);
    return a;
  }

 private:
  std::string path_;
  std::vector<std::string> hooks_;
};

Napi::Value KernelHooks(const Napi::CallbackInfo& info) {
  std::string path = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  return (new KernelHooksWorker(info.Env(), path))->Queue();
}
}  // namespace

void InitBtf(Napi::Env env, Napi::Object exports) {
  exports.Set("kernelHooks", Napi::Function::New(env, KernelHooks, "kernelHooks"));
}

}  // namespace krsi
