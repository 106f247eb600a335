// What an opened (not loaded) object holds: its globals, read from the
// object's BTF, and how to set the `const volatile` ones before load.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "bpf_common.h"

namespace krsi {

struct GlobalVar {
  enum Kind { kString, kInt, kUint, kOther };
  std::string name;
  std::string section;  // ".rodata" for const volatile, ".data", ".bss"
  uint32_t offset = 0;
  uint32_t size = 0;
  Kind kind = kOther;
};

// One KEY=VALUE: a JS string or number.
struct GlobalValue {
  std::string name;
  bool isNumber = false;
  double number = 0;
  std::string text;
};

const char* KindName(GlobalVar::Kind k);
std::vector<GlobalVar> ListGlobals(bpf_object* obj);
// Write every value into the initial image of its section (.rodata, .data,
// .bss: all before load); KEY=0xHEX is raw bytes for non-integer globals. EINVAL naming the global
// on an unknown name, a wrong type, a value out of range or too long.
bool SetGlobals(bpf_object* obj, const std::vector<GlobalValue>& values, Failure* f);

// Maps the object declares by a name in `reuse` (name, pinned path) become
// the pinned map: libbpf uses it instead of creating one (the daemon's events
// ring and counters). Names the object lacks are skipped.
bool ReuseMaps(bpf_object* obj, const std::vector<std::pair<std::string, std::string>>& reuse, Failure* f);
// opts.globals / opts.reuseMaps of a load call, checked; false with a pending TypeError.
bool ParseGlobals(Napi::Env env, Napi::Value g, const char* what, std::vector<GlobalValue>* out);
bool ParseReuseMaps(Napi::Env env, Napi::Value rm, const char* what, std::vector<std::pair<std::string, std::string>>* out);

}  // namespace krsi
