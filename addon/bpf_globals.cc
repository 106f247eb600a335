#include <string.h>

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "bpf_object.h"

namespace krsi {

const char* KindName(GlobalVar::Kind k) {
  switch (k) {
    case GlobalVar::kString: return "string";
    case GlobalVar::kInt: return "int";
    case GlobalVar::kUint: return "uint";
    default: return "other";
  }
}

static GlobalVar::Kind KindOf(const btf* b, uint32_t typeId) {
  int id = btf__resolve_type(b, typeId);
  if (id < 0) return GlobalVar::kOther;
  const btf_type* t = btf__type_by_id(b, id);
  if (btf_is_int(t)) return (btf_int_encoding(t) & BTF_INT_SIGNED) ? GlobalVar::kInt : GlobalVar::kUint;
  if (btf_is_enum(t)) return GlobalVar::kInt;
  if (btf_is_array(t)) {
    int elem = btf__resolve_type(b, btf_array(t)->type);
    const btf_type* e = elem < 0 ? nullptr : btf__type_by_id(b, elem);
    if (e && btf_is_int(e) && e->size == 1) return GlobalVar::kString;
  }
  return GlobalVar::kOther;
}

std::vector<GlobalVar> ListGlobals(bpf_object* obj) {
  std::vector<GlobalVar> out;
  const btf* b = bpf_object__btf(obj);
  if (b == nullptr) return out;
  uint32_t n = btf__type_cnt(b);
  for (uint32_t id = 1; id < n; id++) {
    const btf_type* t = btf__type_by_id(b, id);
    if (!btf_is_datasec(t)) continue;
    std::string sec = btf__name_by_offset(b, t->name_off);
    // data sections only: "license" and ".maps" are datasecs too
    if (sec.rfind(".rodata", 0) != 0 && sec.rfind(".data", 0) != 0 && sec.rfind(".bss", 0) != 0) continue;
    const btf_var_secinfo* vi = btf_var_secinfos(t);
    for (uint16_t i = 0; i < btf_vlen(t); i++, vi++) {
      const btf_type* v = btf__type_by_id(b, vi->type);
      if (!btf_is_var(v) || btf_var(v)->linkage == BTF_VAR_STATIC) continue;
      GlobalVar g;
      g.name = btf__name_by_offset(b, v->name_off);
      g.section = sec;
      g.offset = vi->offset;
      g.size = vi->size;
      g.kind = KindOf(b, v->type);
      out.push_back(g);
    }
  }
  return out;
}

static bpf_map* InternalMap(bpf_object* obj, const std::string& section) {
  bpf_map* m;
  bpf_object__for_each_map(m, obj) {
    if (!bpf_map__is_internal(m)) continue;
    std::string name = bpf_map__name(m);
    if (name.size() >= section.size() && name.compare(name.size() - section.size(), section.size(), section) == 0)
      return m;
  }
  return nullptr;
}

// Parse a whole decimal (or 0x hex) integer; false if anything is left over.
static bool ParseInt(const std::string& s, bool isSigned, long long* sv, unsigned long long* uv) {
  if (s.empty() || isspace(static_cast<unsigned char>(s[0]))) return false;
  bool hex = s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
  char* end = nullptr;
  errno = 0;
  if (isSigned) {
    *sv = strtoll(s.c_str(), &end, hex ? 16 : 10);
  } else {
    if (s[0] == '-') return false;
    *uv = strtoull(s.c_str(), &end, hex ? 16 : 10);
  }
  return errno == 0 && end != nullptr && *end == '\0';
}

static bool SetOne(const GlobalVar& g, const GlobalValue& v, uint8_t* image, size_t imageSize, Failure* f) {
  std::string what = "set global " + g.name;
  if (static_cast<size_t>(g.offset) + g.size > imageSize) {
    f->set(EINVAL, what + ": outside the object's " + g.section + " section");
    return false;
  }
  uint8_t* dst = image + g.offset;
  if (g.kind == GlobalVar::kString) {
    std::string s = v.isNumber ? std::to_string(static_cast<long long>(v.number)) : v.text;
    if (v.isNumber && std::trunc(v.number) != v.number) {
      f->set(EINVAL, what + ": expected a string");
      return false;
    }
    if (s.find('\0') != std::string::npos) {
      f->set(EINVAL, what + ": value contains a NUL byte");
      return false;
    }
    if (s.size() + 1 > g.size) {
      f->set(EINVAL, what + ": value is " + std::to_string(s.size()) + " bytes, more than its capacity of " +
                         std::to_string(g.size - 1) + " (char[" + std::to_string(g.size) + "])");
      return false;
    }
    memset(dst, 0, g.size);
    memcpy(dst, s.data(), s.size());
    return true;
  }
  if ((g.kind != GlobalVar::kInt && g.kind != GlobalVar::kUint) ||
      (g.size != 1 && g.size != 2 && g.size != 4 && g.size != 8)) {
    f->set(EINVAL, what + ": only integer and char-array globals can be set (this one is " +
                       std::to_string(g.size) + " bytes of another type)");
    return false;
  }
  bool isSigned = g.kind == GlobalVar::kInt;
  long long sv = 0;
  unsigned long long uv = 0;
  std::string shown = v.isNumber ? "" : v.text;
  if (v.isNumber) {
    if (!std::isfinite(v.number) || std::trunc(v.number) != v.number || std::fabs(v.number) > 9007199254740991.0) {
      f->set(EINVAL, what + ": not an integer");
      return false;
    }
    if (isSigned) {
      sv = static_cast<long long>(v.number);
    } else if (v.number < 0) {
      f->set(EINVAL, what + ": " + std::to_string(static_cast<long long>(v.number)) + " is negative, the global is unsigned");
      return false;
    } else {
      uv = static_cast<unsigned long long>(v.number);
    }
    shown = std::to_string(isSigned ? sv : static_cast<long long>(uv));
  } else if (!ParseInt(v.text, isSigned, &sv, &uv)) {
    f->set(EINVAL, what + ": '" + v.text + "' is not " + (isSigned ? "an integer" : "an unsigned integer"));
    return false;
  }
  unsigned bits = g.size * 8;
  bool fits = isSigned ? (bits == 64 || (sv >= -(1LL << (bits - 1)) && sv < (1LL << (bits - 1))))
                       : (bits == 64 || uv < (1ULL << bits));
  if (!fits) {
    f->set(EINVAL, what + ": " + shown + " does not fit in " + (isSigned ? "a signed " : "an unsigned ") +
                       std::to_string(bits) + "-bit integer");
    return false;
  }
  // host byte order: objects are built for the machine they are loaded on
  uint64_t raw = isSigned ? static_cast<uint64_t>(sv) : uv;
  switch (g.size) {
    case 1: { uint8_t x = raw; memcpy(dst, &x, 1); break; }
    case 2: { uint16_t x = raw; memcpy(dst, &x, 2); break; }
    case 4: { uint32_t x = raw; memcpy(dst, &x, 4); break; }
    default: memcpy(dst, &raw, 8);
  }
  return true;
}

// KEY=0xHEX: raw bytes, exactly the global's size (bpfman's --global
// NAME=HEX). Not for integer globals: there 0x... is the number (0x3e8 is
// 1000), as it always was. false (and *isRaw false) when text is not 0xHEX.
static bool ParseRaw(const std::string& s, std::vector<uint8_t>* out) {
  if (s.size() < 3 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X')) return false;
  std::string hex = s.substr(2);
  if (hex.size() % 2 != 0) return false;
  out->clear();
  for (size_t i = 0; i < hex.size(); i += 2) {
    if (!isxdigit(static_cast<unsigned char>(hex[i])) || !isxdigit(static_cast<unsigned char>(hex[i + 1]))) return false;
    out->push_back(static_cast<uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return true;
}

static bool Settable(const std::string& sec) {
  return sec.rfind(".rodata", 0) == 0 || sec.rfind(".data", 0) == 0 || sec.rfind(".bss", 0) == 0;
}

bool SetGlobals(bpf_object* obj, const std::vector<GlobalValue>& values, Failure* f) {
  if (values.empty()) return true;
  std::vector<GlobalVar> all = ListGlobals(obj);
  for (const GlobalValue& v : values) {
    const GlobalVar* g = nullptr;
    for (const GlobalVar& c : all)
      if (c.name == v.name && Settable(c.section)) g = &c;
    if (g == nullptr) {
      std::string have;
      for (const GlobalVar& c : all)
        if (Settable(c.section)) have += (have.empty() ? "" : ", ") + c.name;
      f->set(EINVAL, "set global: no global named " + v.name + " in object (have: " + (have.empty() ? "none" : have) + ")");
      f->detailsJson = "{\"global\":" + JsonString(v.name) + "}";
      return false;
    }
    bpf_map* m = InternalMap(obj, g->section);
    size_t size = 0;
    void* image = m ? const_cast<void*>(bpf_map__initial_value(m, &size)) : nullptr;
    if (image == nullptr) {
      f->set(EINVAL, "set global " + v.name + ": the object has no " + g->section + " map to write it into");
      return false;
    }
    bool ok;
    std::vector<uint8_t> raw;
    bool isInt = g->kind == GlobalVar::kInt || g->kind == GlobalVar::kUint;
    // a string global's 0xHEX is raw only at its exact size: as text it
    // would be longer than the array anyway
    bool rawSized = !v.isNumber && ParseRaw(v.text, &raw) && (g->kind != GlobalVar::kString || raw.size() == g->size);
    if (!isInt && rawSized) {
      if (raw.size() != g->size) {
        f->set(EINVAL, "set global " + v.name + ": 0x value is " + std::to_string(raw.size()) + " bytes, the global is " +
                           std::to_string(g->size) + " (raw bytes must be its exact size)");
        ok = false;
      } else if (static_cast<size_t>(g->offset) + g->size > size) {
        f->set(EINVAL, "set global " + v.name + ": outside the object's " + g->section + " section");
        ok = false;
      } else {
        memcpy(static_cast<uint8_t*>(image) + g->offset, raw.data(), raw.size());
        ok = true;
      }
    } else if (g->kind == GlobalVar::kOther) {
      f->set(EINVAL, "set global " + v.name + ": a " + std::to_string(g->size) +
                         "-byte global that is neither an integer nor a char array takes raw bytes only: " + v.name +
                         "=0x followed by " + std::to_string(g->size * 2) + " hex digits");
      ok = false;
    } else {
      ok = SetOne(*g, v, static_cast<uint8_t*>(image), size, f);
    }
    if (!ok) {
      f->detailsJson = "{\"global\":" + JsonString(v.name) + ",\"size\":" + std::to_string(g->size) + "}";
      return false;
    }
  }
  return true;
}

}  // namespace krsi
