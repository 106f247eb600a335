// The running kernel's LSM hooks, read from its BTF once. The BTF itself
// (several MiB parsed) is not kept: listings name a link's hook from its
// target BTF id, loads check a hook exists, the observer needs the hook's
// return type, and all of that is in one small table. The rare companion
// link on another kernel function reads the BTF again, once per function.
#include <errno.h>
#include <malloc.h>

#include <algorithm>
#include <map>
#include <mutex>

#include "bpf_common.h"

namespace krsi {

BtfPtr LoadVmlinuxBtf(int* err) {
  errno = 0;
  BtfPtr b(btf__load_vmlinux_btf());
  if (!b) *err = errno ? errno : ENOENT;
  return b;
}

const std::vector<KernelHook>* KernelHookTable(int* err) {
  static std::mutex mu;
  static std::vector<KernelHook> table;
  static bool built = false;
  std::lock_guard<std::mutex> lock(mu);
  if (built) return &table;
  {
    BtfPtr b = LoadVmlinuxBtf(err);
    if (!b) return nullptr;  // tried again next time, as a fresh read would be
    uint32_t n = btf__type_cnt(b.get());
    for (uint32_t id = 1; id < n; id++) {
      const btf_type* t = btf__type_by_id(b.get(), id);
      std::string hook = HookOfFunc(b.get(), t);
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

std::string VmlinuxFuncName(uint32_t id) {
  static std::mutex mu;
  static std::map<uint32_t, std::string> names;
  std::lock_guard<std::mutex> lock(mu);
  auto it = names.find(id);
  if (it != names.end()) return it->second;
  std::string name;
  {
    int err = 0;
    BtfPtr b = LoadVmlinuxBtf(&err);
    if (!b) return "";  // not remembered: the next listing tries again
    const btf_type* t = id != 0 && id < btf__type_cnt(b.get()) ? btf__type_by_id(b.get(), id) : nullptr;
    const char* fn = t && btf_is_func(t) ? btf__name_by_offset(b.get(), t->name_off) : nullptr;
    if (fn) name = fn;
  }
  malloc_trim(0);
  names.emplace(id, name);
  return name;
}

}  // namespace krsi
