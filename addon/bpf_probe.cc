// The native half of probe() (lib/kernel/probe.ts reads BTF, the LSM list
// and lockdown itself): mount securityfs when it is missing, and load the
// smallest LSM program there is (r0 = 0; exit) on bprm_check_security.
#include <string.h>
#include <sys/mount.h>

#include <vector>

#include "bpf_common.h"

namespace krsi {

namespace {

struct ProbeResult {
  bool ok = false;
  bool noHook = false;
  int err = 0;
  std::string log;
};

void LoadProbe(ProbeResult* r) {
  int err = 0;
  const KernelHook* h = FindKernelHook("bprm_check_security", &err);
  if (h == nullptr) {
    r->noHook = true;
    r->err = err ? err : ENOENT;
    return;
  }
  struct bpf_insn insns[2] = {};
  insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;
  insns[0].dst_reg = BPF_REG_0;
  insns[1].code = BPF_JMP | BPF_EXIT;
  std::vector<char> log(64 * 1024, '\0');
  LIBBPF_OPTS(bpf_prog_load_opts, opts);
  opts.expected_attach_type = BPF_LSM_MAC;
  opts.attach_btf_id = h->btfId;
  opts.log_level = 1;
  opts.log_buf = log.data();
  opts.log_size = static_cast<__u32>(log.size());
  UniqueFd fd(bpf_prog_load(BPF_PROG_TYPE_LSM, "krsifs_probe", "GPL", insns, 2, &opts));
  r->ok = fd.valid();
  if (r->ok) return;
  r->err = errno;
  r->log = log.data();
  while (!r->log.empty() && r->log.back() == '\n') r->log.pop_back();
}

Napi::Value ProbeLoad(const Napi::CallbackInfo& info) {
  auto r = std::make_shared<ProbeResult>();
  return Work(info.Env(), "krsifs:probeLoad", [r](Failure*) { LoadProbe(r.get()); }, [r](Napi::Env env) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("ok", Napi::Boolean::New(env, r->ok));
    if (r->err != 0) o.Set("errno", r->err);
    if (r->noHook) o.Set("noHook", Napi::Boolean::New(env, true));
    if (!r->log.empty()) o.Set("log", r->log);
    return o;
  });
}

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
