// The running kernel's LSM hooks, read from its BTF once. The BTF itself
// (several MiB parsed) is not kept: listings name a link's hook from its
// target BTF id, loads check a hook exists, the observer needs the hook's
// return type, and all of that is in one small table. The rare companion
// link on another kernel function reads the BTF again, once per function.
// kernelHooks(): the table's hook names (lib/kernel/hooks.ts sorts them).
#include <errno.h>
#include <malloc.h>
#include <string.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <set>

#include "bpf_common.h"

namespace krsi {

BtfPtr LoadVmlinuxBtf(int* err) {
  errno = 0;
  BtfPtr b(btf__load_vmlinux_btf());
  if (!b) *err = errno ? errno : ENOENT;
  return b;
}

// Functions named bpf_lsm_* include the BPF LSM's own code (bpf_lsm_init,
// bpf_lsm_func_proto, ...), not only the hooks: linkage cannot tell them
// apart (pahole marks every vmlinux FUNC static). The kernel's table of LSM
// hooks can: struct security_hook_heads (struct lsm_static_calls_table since
// 6.9) has one member per hook, generated from the same lsm_hook_defs.h as
// the bpf_lsm_<hook> stubs.
static const char* const kHookTables[] = {"lsm_static_calls_table", "security_hook_heads"};
// Without either table (an unusual kernel), the known non-hooks are left out.
static const char* const kNotHooks[] = {
    "verify_prog", "is_sleepable_hook", "is_trusted", "find_cgroup_shim", "get_retval_range",
    "func_proto",  "init",              "has_d_inode_locked", "hook_returns_errno",
};

namespace {
// The member names of the kernel's hook table; empty when it has none.
std::set<std::string> HookTableMembers(const btf* b) {
  std::set<std::string> names;
  for (const char* table : kHookTables) {
    int id = btf__find_by_name_kind(b, table, BTF_KIND_STRUCT);
    if (id <= 0) continue;
    const btf_type* t = btf__type_by_id(b, id);
    const btf_member* m = btf_members(t);
    for (int i = 0; i < btf_vlen(t); i++) {
      const char* n = btf__name_by_offset(b, m[i].name_off);
      if (n != nullptr && *n != '\0') names.insert(n);
    }
    break;
  }
  return names;
}

// "file_open" for the BTF FUNC bpf_lsm_file_open, "" for anything that is not
// an LSM hook (other types, static functions, the BPF LSM's own helpers).
std::string HookOfFunc(const btf* b, const btf_type* t, const std::set<std::string>& members) {
  if (!btf_is_func(t)) return "";
  const char* name = btf__name_by_offset(b, t->name_off);
  if (name == nullptr || strncmp(name, "bpf_lsm_", 8) != 0 || name[8] == '\0') return "";
  if (!members.empty()) return members.count(name + 8) ? name + 8 : "";
  for (const char* n : kNotHooks)
    if (strcmp(name + 8, n) == 0) return "";
  return name + 8;
}
}  // namespace

// Every hook, in id order; null and *err set while the BTF cannot be read.
static const std::vector<KernelHook>* KernelHookTable(int* err) {
  static std::mutex mu;
  static std::vector<KernelHook> table;
  static bool built = false;
  std::lock_guard<std::mutex> lock(mu);
  if (built) return &table;
  {
    BtfPtr b = LoadVmlinuxBtf(err);
    if (!b) return nullptr;  // tried again next time, as a fresh read would be
    std::set<std::string> members = HookTableMembers(b.get());
    uint32_t n = btf__type_cnt(b.get());
    for (uint32_t id = 1; id < n; id++) {
      const btf_type* t = btf__type_by_id(b.get(), id);
      std::string hook = HookOfFunc(b.get(), t, members);
      if (hook.empty()) continue;
      const btf_type* proto = btf__type_by_id(b.get(), t->type);
      table.push_back({id, hook, proto != nullptr && btf_is_func_proto(proto) && proto->type != 0});
    }
  }
  // the parse's megabytes were freed above: hand them back instead of
  // leaving them in this thread's malloc arena
  malloc_trim(0);
  built = true;
  return &table;
}

const KernelHook* FindKernelHook(const std::string& hook, int* err) {
  *err = 0;
  const std::vector<KernelHook>* table = KernelHookTable(err);
  if (table == nullptr) return nullptr;
  // in id order, so the first is the one btf__find_by_name_kind finds
  for (const KernelHook& h : *table)
    if (h.name == hook) return &h;
  return nullptr;
}

std::string HookOfVmlinuxId(uint32_t id) {
  int err = 0;
  const std::vector<KernelHook>* table = KernelHookTable(&err);
  if (table == nullptr || id == 0) return "";
  auto it = std::lower_bound(table->begin(), table->end(), id,
                             [](const KernelHook& h, uint32_t v) { return h.btfId < v; });
  return it != table->end() && it->btfId == id ? it->name : "";
}

namespace {
Napi::Value KernelHooks(const Napi::CallbackInfo& info) {
  auto hooks = std::make_shared<std::vector<std::string>>();
  return Work(
      info.Env(), "krsifs:kernelHooks",
      [hooks](Failure* f) {
        int err = 0;
        if (const std::vector<KernelHook>* table = KernelHookTable(&err)) {
          for (const KernelHook& h : *table) hooks->push_back(h.name);
        } else {
          f->set(err, "read kernel BTF /sys/kernel/btf/vmlinux: " + ErrText(err) +
                          (err == ENOENT ? " (the kernel was built without CONFIG_DEBUG_INFO_BTF)" : ""));
        }
      },
      [hooks](Napi::Env env) {
        Napi::Array a = Napi::Array::New(env, hooks->size());
        for (size_t i = 0; i < hooks->size(); i++) a.Set(i, (*hooks)[i]);
        return a;
      });
}
}  // namespace

void InitHooks(Napi::Env env, Napi::Object exports) {
  exports.Set("kernelHooks", Napi::Function::New(env, KernelHooks, "kernelHooks"));
}

}  // namespace krsi
