// The native half of probe() (lib/kernel/probe.ts reads BTF, the LSM list
// and lockdown itself): mount securityfs when it is missing, and load the
// smallest LSM program there is (r0 = 0; exit) on bprm_check_security.
#include <string.h>
#include <sys/mount.h>

#include <vector>

#include "bpf_common.h"

namespace krsi {

namespace {

class ProbeLoadWorker : public PromiseWorker {
 public:
  explicit ProbeLoadWorker(Napi::Env env) : PromiseWorker(env, "krsifs:ProbeLoadWorker") {}

 protected:
  void Run() override {
    int err = 0;
    const KernelHook* h = FindKernelHook("bprm_check_security", &err);
    int btfId = h ? static_cast<int>(h->btfId) : -ENOENT;
    if (btfId <= 0) {
      noHook_ = true;
      errno_ = err ? err : ENOENT;
      return;
    }
    struct bpf_insn insns[2] = {};
    insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;
    insns[0].dst_reg = BPF_REG_0;
    insns[1].code = BPF_JMP | BPF_EXIT;
    std::vector<char> log(64 * 1024, '\0');
    LIBBPF_OPTS(bpf_prog_load_opts, opts);
    opts.expected_attach_type = BPF_LSM_MAC;
    opts.attach_btf_id = static_cast<__u32>(btfId);
    opts.log_level = 1;
    opts.log_buf = log.data();
    opts.log_size = static_cast<__u32>(log.size());
    int fd = bpf_prog_load(BPF_PROG_TYPE_LSM, "krsifs_probe", "GPL", insns, 2, &opts);
    if (fd >= 0) {
      close(fd);
      ok_ = true;
      return;
    }
    errno_ = errno;
    log_ = log.data();
    while (!log_.empty() && log_.back() == '\n') log_.pop_back();
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("ok", Napi::Boolean::New(env, ok_));
    if (errno_ != 0) o.Set("errno", errno_);
    if (noHook_) o.Set("noHook", Napi::Boolean::New(env, true));
    if (!log_.empty()) o.Set("log", log_);
    return o;
  }

 private:
  bool ok_ = false;
  bool noHook_ = false;
  int errno_ = 0;
  std::string log_;
};

Napi::Value ProbeLoad(const Napi::CallbackInfo& info) { return (new ProbeLoadWorker(info.Env()))->Queue(); }

// 0, or why securityfs could not be mounted at /sys/kernel/security.
Napi::Value MountSecurityfs(const Napi::CallbackInfo& info) {
  int err = mount("securityfs", "/sys/kernel/security", "securityfs", 0, nullptr) == 0 ? 0 : errno;
  return Napi::Number::New(info.Env(), err);
}
}  // namespace

void InitProbe(Napi::Env env, Napi::Object exports) {
  exports.Set("probeLoad", Napi::Function::New(env, ProbeLoad, "probeLoad"));
  exports.Set("mountSecurityfs", Napi::Function::New(env, MountSecurityfs, "mountSecurityfs"));
}

}  // namespace krsi
