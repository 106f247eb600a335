// An object libbpf has opened (parsed once) and not loaded yet: made on the
// reader thread after a read (bpf_read.cc) or by openObject, loaded,
// attached and pinned by its handle's load() (bpf_object.cc).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "bpf_common.h"

namespace krsi {

// What the object holds, read on the thread that opened it: the JS side
// derives everything else (hooks of sections, companions) from these.
struct ObjectFacts {
  struct Program {
    std::string name, section, type, expectedAttachType;
    bool hasExpected = false;
    size_t insns = 0;
  };
  struct Map {
    std::string name, type;
    uint32_t keySize = 0, valueSize = 0, maxEntries = 0;
    bool internal = false;
  };
  // A global of a data section (.rodata, .data, .bss) from the object's BTF.
  struct Global {
    std::string name, section;
    const char* kind = "other";  // "string" (char array), "int", "uint", "other"
    uint32_t offset = 0, size = 0;
  };
  std::string name;
  std::vector<Program> programs;
  std::vector<Map> maps;
  std::vector<Global> globals;
};

// Shared by the JS handle and a load in flight: close() while a load runs
// leaves the object to the load, which frees it when done.
struct Opened {
  ObjectPtr obj;
  ObjectFacts facts;
  bool used = false;  // an object loads once
};

// Open `data` (libbpf's object name: `name`) and read its facts; null with f
// set (ENOEXEC) when the bytes are not a BPF object libbpf can open.
std::shared_ptr<Opened> OpenBytes(const std::vector<uint8_t>& data, const std::string& name, Failure* f);
// {facts, handle} for JS (JS thread only).
Napi::Value NewOpened(Napi::Env env, BpfEnvData* data, std::shared_ptr<Opened> o);

}  // namespace krsi
