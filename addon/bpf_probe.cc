// probe(): will this kernel load a BPF LSM program? Checks BTF, the active
// LSM list (mounting securityfs if needed), lockdown, then loads the smallest
// LSM program there is (r0 = 0; exit) on bprm_check_security and closes it.
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include <fstream>
#include <sstream>

#include "bpf_common.h"

namespace krsi {

namespace {
constexpr const char* kSecurityfs = "/sys/kernel/security";

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream f(path);
  if (!f) return false;
  std::stringstream ss;
  ss << f.rdbuf();
  *out = ss.str();
  while (!out->empty() && (out->back() == '\n' || out->back() == ' ')) out->pop_back();
  return true;
}

// GRUB_CMDLINE_LINUX_DEFAULT from /etc/default/grub with its lsm= replaced by
// (or extended with) `lsm`, so the user can paste the exact line.
std::string GrubLine(const std::string& lsm) {
  std::string grub, current;
  if (ReadFile("/etc/default/grub", &grub)) {
    std::stringstream ss(grub);
    std::string line;
    const std::string key = "GRUB_CMDLINE_LINUX_DEFAULT=";
    while (std::getline(ss, line)) {
      if (line.rfind(key, 0) != 0) continue;
      current = line.substr(key.size());
      if (current.size() >= 2 && (current[0] == '"' || current[0] == '\'')) current = current.substr(1, current.size() - 2);
    }
  }
  std::stringstream words(current);
  std::string w, out;
  while (words >> w)
    if (w.rfind("lsm=", 0) != 0) out += w + " ";
  return "GRUB_CMDLINE_LINUX_DEFAULT=\"" + out + lsm + "\"";
}

class ProbeWorker : public PromiseWorker {
 public:
  explicit ProbeWorker(Napi::Env env) : PromiseWorker(env, "krsifs:ProbeWorker") {}

 protected:
  void Run() override {
    struct utsname u;
    if (uname(&u) == 0) release_ = u.release;
    struct stat st;
    btf_ = stat("/sys/kernel/btf/vmlinux", &st) == 0;
    std::string lsm;
    if (!ReadFile(std::string(kSecurityfs) + "/lsm", &lsm)) {
      if (mount("securityfs", kSecurityfs, "securityfs", 0, nullptr) == 0) {
        securityfs_ = "mounted-now";
      } else {
        securityfsErr_ = errno;
      }
    }
    if (ReadFile(std::string(kSecurityfs) + "/lsm", &lsm)) {
      haveLsm_ = true;
      std::stringstream ss(lsm);
      std::string item;
      while (std::getline(ss, item, ','))
        if (!item.empty()) lsms_.push_back(item);
      for (auto& l : lsms_)
        if (l == "bpf") bpfActive_ = true;
    } else if (securityfs_ == "mounted") {
      securityfs_ = "unavailable";
    }
    std::string lockdown;
    if (ReadFile(std::string(kSecurityfs) + "/lockdown", &lockdown)) {
      size_t a = lockdown.find('['), b = lockdown.find(']');
      lockdown_ = a != std::string::npos && b > a ? lockdown.substr(a + 1, b - a - 1) : lockdown;
    }
    if (!btf_) {
      Fail(ENOENT, "the kernel has no BTF (/sys/kernel/btf/vmlinux is missing), which BPF LSM programs need",
           "run a kernel built with CONFIG_DEBUG_INFO_BTF=y and CONFIG_BPF_LSM=y");
      return;
    }
    if (!haveLsm_) {
      Fail(securityfsErr_ ? securityfsErr_ : ENOENT,
           "cannot read the active LSM list: securityfs is not mounted at /sys/kernel/security and mounting it failed (" +
               ErrText(securityfsErr_ ? securityfsErr_ : ENOENT) + ")",
           "mount -t securityfs securityfs /sys/kernel/security (as root)");
      return;
    }
    if (!bpfActive_) {
      std::string list;
      for (auto& l : lsms_) list += l + ",";
      Fail(EOPNOTSUPP, "the bpf LSM is not active on this kernel (active: " + lsm + ")",
           "set this line in /etc/default/grub:\n  " + GrubLine("lsm=" + list + "bpf") +
               "\nthen run update-grub and reboot (the kernel also needs CONFIG_BPF_LSM=y)");
      return;
    }
    int err = 0;
    const btf* b = VmlinuxBtf(&err);
    int btfId = b ? btf__find_by_name_kind(b, "bpf_lsm_bprm_check_security", BTF_KIND_FUNC) : -ENOENT;
    if (btfId <= 0) {
      Fail(err ? err : ENOENT, "the kernel's BTF has no bpf_lsm_bprm_check_security: BPF LSM is not built in",
           "run a kernel built with CONFIG_BPF_LSM=y");
      return;
    }
    // r0 = 0; exit
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
      loadOk_ = true;
      reason_ = "BPF LSM programs load on this kernel";
      return;
    }
    int e = errno;
    loadErr_ = e;
    std::string vlog = log.data();
    while (!vlog.empty() && vlog.back() == '\n') vlog.pop_back();
    if (e == EPERM) {
      std::string why = "this kernel refuses BPF LSM programs with EPERM even though the bpf LSM is active "
                        "and we are root";
      why += lockdown_ == "confidentiality" ? ": kernel lockdown is 'confidentiality', which forbids it"
                                            : ": the host's policy forbids them (a hypervisor or sandbox restriction, "
                                              "or a security module denying bpf())";
      Fail(e, why,
           lockdown_ == "confidentiality"
               ? "boot with lockdown=integrity or none, or try on a real BPF LSM kernel: npm run vm"
               : "run krsifs where BPF LSM is allowed (a VM or bare metal kernel with lsm=...,bpf); "
                 "to try here, run it in a QEMU guest with a real BPF LSM kernel: npm run vm");
    } else {
      Fail(e, "loading a minimal LSM program failed: " + ErrText(e) + (vlog.empty() ? "" : " (" + vlog + ")"),
           "");
    }
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("ok", Napi::Boolean::New(env, loadOk_));
    if (err_ != 0) {
      o.Set("errno", err_);
      o.Set("code", ErrName(err_));
    }
    o.Set("reason", reason_);
    if (!fix_.empty()) o.Set("fix", fix_);
    Napi::Object c = Napi::Object::New(env);
    c.Set("kernelRelease", release_);
    c.Set("btf", Napi::Boolean::New(env, btf_));
    c.Set("securityfs", securityfs_);
    Napi::Value lsms = env.Null();
    if (haveLsm_) {
      Napi::Array a = Napi::Array::New(env, lsms_.size());
      for (size_t i = 0; i < lsms_.size(); i++) a.Set(i, lsms_[i]);
      lsms = a;
    }
    c.Set("lsm", lsms);
    c.Set("bpfLsmActive", Napi::Boolean::New(env, bpfActive_));
    c.Set("lockdown", lockdown_.empty() ? env.Null() : Napi::Value(Napi::String::New(env, lockdown_)));
    Napi::Object load = Napi::Object::New(env);
    bool tried = loadOk_ || loadErr_ != 0;
    load.Set("tried", Napi::Boolean::New(env, tried));
    load.Set("ok", Napi::Boolean::New(env, loadOk_));
    if (loadErr_ != 0) {
      load.Set("errno", loadErr_);
      load.Set("code", ErrName(loadErr_));
    }
    c.Set("load", load);
    o.Set("checks", c);
    return o;
  }

 private:
  void Fail(int err, std::string reason, std::string fix) {
    err_ = err;
    reason_ = std::move(reason);
    fix_ = std::move(fix);
  }

  std::string release_;
  bool btf_ = false;
  std::string securityfs_ = "mounted";
  int securityfsErr_ = 0;
  bool haveLsm_ = false;
  std::vector<std::string> lsms_;
  bool bpfActive_ = false;
  std::string lockdown_;
  bool loadOk_ = false;
  int loadErr_ = 0;
  int err_ = 0;
  std::string reason_;
  std::string fix_;
};

Napi::Value Probe(const Napi::CallbackInfo& info) { return (new ProbeWorker(info.Env()))->Queue(); }
}  // namespace

void InitProbe(Napi::Env env, Napi::Object exports) {
  exports.Set("probe", Napi::Function::New(env, Probe, "probe"));
}

}  // namespace krsi
