// inspect(data, name?): what an object holds, without loading anything.
#include <string.h>

#include "bpf_object.h"

namespace krsi {

namespace {
struct ProgramFacts {
  std::string name, section, type, expectedAttachType, hook;
  bool hasExpected = false, isLsm = false, sleepable = false;
  size_t insns = 0;
};
struct MapFacts {
  std::string name, type;
  uint32_t keySize = 0, valueSize = 0, maxEntries = 0;
  bool internal = false;
};

std::string Str(const char* s, unsigned v) { return s ? s : "unknown(" + std::to_string(v) + ")"; }

class InspectWorker : public PromiseWorker {
 public:
  InspectWorker(Napi::Env env, std::vector<uint8_t> data, std::string name)
      : PromiseWorker(env, "krsifs:InspectWorker"), data_(std::move(data)), name_(std::move(name)) {}

 protected:
  void Run() override {
    ObjectPtr obj = OpenObject(data_, name_, nullptr, 0, &failure_);
    if (!obj) return;
    objName_ = bpf_object__name(obj.get());
    // libbpf 1.1 has no getter for the license: read the "license" section's
    // bytes from the ELF ourselves.
    license_ = LicenseOf();
    bpf_program* p;
    bpf_object__for_each_program(p, obj.get()) {
      ProgramFacts pf;
      pf.name = bpf_program__name(p);
      pf.section = bpf_program__section_name(p);
      bpf_prog_type t = bpf_program__type(p);
      pf.type = Str(libbpf_bpf_prog_type_str(t), t);
      bpf_attach_type a = bpf_program__expected_attach_type(p);
      // 0 is BPF_CGROUP_INET_INGRESS, and also "none" for most types
      pf.hasExpected = a != 0 || t == BPF_PROG_TYPE_CGROUP_SKB;
      pf.expectedAttachType = Str(libbpf_bpf_attach_type_str(a), a);
      pf.isLsm = t == BPF_PROG_TYPE_LSM;
      pf.hook = pf.isLsm ? HookOfSection(pf.section.c_str()) : "";
      pf.sleepable = pf.isLsm && IsSleepableSection(pf.section.c_str());
      pf.insns = bpf_program__insn_cnt(p);
      programs_.push_back(pf);
    }
    bpf_map* m;
    bpf_object__for_each_map(m, obj.get()) {
      MapFacts mf;
      mf.name = bpf_map__name(m);
      bpf_map_type t = bpf_map__type(m);
      mf.type = Str(libbpf_bpf_map_type_str(t), t);
      mf.keySize = bpf_map__key_size(m);
      mf.valueSize = bpf_map__value_size(m);
      mf.maxEntries = bpf_map__max_entries(m);
      mf.internal = bpf_map__is_internal(m);
      maps_.push_back(mf);
    }
    globals_ = ListGlobals(obj.get());
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", objName_);
    o.Set("license", license_);
    Napi::Array progs = Napi::Array::New(env, programs_.size());
    for (size_t i = 0; i < programs_.size(); i++) {
      const ProgramFacts& pf = programs_[i];
      Napi::Object p = Napi::Object::New(env);
      p.Set("name", pf.name);
      p.Set("section", pf.section);
      p.Set("type", pf.type);
      p.Set("expectedAttachType", pf.hasExpected ? Napi::String::New(env, pf.expectedAttachType) : env.Null());
      p.Set("isLsm", pf.isLsm);
      p.Set("hook", pf.hook.empty() ? env.Null() : Napi::String::New(env, pf.hook));
      p.Set("sleepable", pf.sleepable);
      p.Set("instructions", Napi::Number::New(env, static_cast<double>(pf.insns)));
      progs.Set(i, p);
    }
    o.Set("programs", progs);
    Napi::Array maps = Napi::Array::New(env, maps_.size());
    for (size_t i = 0; i < maps_.size(); i++) {
      const MapFacts& mf = maps_[i];
      Napi::Object m = Napi::Object::New(env);
      m.Set("name", mf.name);
      m.Set("type", mf.type);
      m.Set("keySize", mf.keySize);
      m.Set("valueSize", mf.valueSize);
      m.Set("maxEntries", mf.maxEntries);
      m.Set("internal", mf.internal);
      maps.Set(i, m);
    }
    o.Set("maps", maps);
    Napi::Array globals = Napi::Array::New(env, globals_.size());
    for (size_t i = 0; i < globals_.size(); i++) {
      Napi::Object g = Napi::Object::New(env);
      g.Set("name", globals_[i].name);
      g.Set("size", globals_[i].size);
      g.Set("section", globals_[i].section);
      g.Set("kind", KindName(globals_[i].kind));
      globals.Set(i, g);
    }
    o.Set("globals", globals);
    return o;
  }

 private:
  // The NUL-terminated contents of the ELF section named "license" ("" if none).
  std::string LicenseOf() const {
    const uint8_t* d = data_.data();
    size_t n = data_.size();
    auto u16 = [&](size_t off) -> uint32_t { return off + 2 <= n ? d[off] | d[off + 1] << 8 : 0; };
    auto u32 = [&](size_t off) -> uint64_t { return off + 4 <= n ? u16(off) | static_cast<uint64_t>(u16(off + 2)) << 16 : 0; };
    auto u64 = [&](size_t off) -> uint64_t { return u32(off) | u32(off + 4) << 32; };
    if (n < 64 || d[5] != 1 /* little endian; libbpf checked the rest */) return "";
    uint64_t shoff = u64(0x28);
    uint32_t shentsize = u16(0x3a), shnum = u16(0x3c), shstrndx = u16(0x3e);
    if (shentsize < 64 || shoff >= n || shstrndx >= shnum) return "";
    auto sh = [&](uint32_t i) { return shoff + static_cast<uint64_t>(i) * shentsize; };
    uint64_t strOff = u64(sh(shstrndx) + 0x18);
    for (uint32_t i = 0; i < shnum && sh(i) + 64 <= n; i++) {
      uint64_t nameOff = strOff + u32(sh(i));
      if (nameOff >= n) continue;
      const char* nm = reinterpret_cast<const char*>(d + nameOff);
      if (strnlen(nm, n - nameOff) == n - nameOff || strcmp(nm, "license") != 0) continue;
      uint64_t off = u64(sh(i) + 0x18), size = u64(sh(i) + 0x20);
      if (off > n || size > n - off) return "";
      const char* s = reinterpret_cast<const char*>(d + off);
      return std::string(s, strnlen(s, size));
    }
    return "";
  }

  std::vector<uint8_t> data_;
  std::string name_, objName_, license_;
  std::vector<ProgramFacts> programs_;
  std::vector<MapFacts> maps_;
  std::vector<GlobalVar> globals_;
};

Napi::Value Inspect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<uint8_t> data;
  if (!CopyBytes(env, info[0], "inspect", &data)) return env.Undefined();
  std::string name = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
  return (new InspectWorker(env, std::move(data), name))->Queue();
}
}  // namespace

void InitInspect(Napi::Env env, Napi::Object exports) {
  exports.Set("inspect", Napi::Function::New(env, Inspect, "inspect"));
}

}  // namespace krsi
