// Opened objects: their facts, openObject(data, name), and the handle's
// load(hook, opts): one worker that loads every program, attaches it and pins
// its link, all or nothing. lib/kernel/object.ts checks the object against
// the hook, encodes the globals and says what failed in words; this file
// only does what needs libbpf.
#include <string.h>
#include <sys/mman.h>

#include <malloc.h>

#include "bpf_object.h"

namespace krsi {

namespace {
// Big enough for any log the old retry loop reached (256 KiB ×4 up to 16 MiB):
// mapped untouched, so only what the kernel writes on a failure costs memory.
constexpr size_t kLogSize = 16u << 20;

std::string Str(const char* s, unsigned v) { return s ? s : "unknown(" + std::to_string(v) + ")"; }

const char* KindOf(const btf* b, uint32_t typeId) {
  int id = btf__resolve_type(b, typeId);
  if (id < 0) return "other";
  const btf_type* t = btf__type_by_id(b, id);
  if (btf_is_int(t)) return (btf_int_encoding(t) & BTF_INT_SIGNED) ? "int" : "uint";
  if (btf_is_enum(t)) return "int";
  if (btf_is_array(t)) {
    int elem = btf__resolve_type(b, btf_array(t)->type);
    const btf_type* e = elem < 0 ? nullptr : btf__type_by_id(b, elem);
    if (e && btf_is_int(e) && e->size == 1) return "string";
  }
  return "other";
}

// What the object holds, read from libbpf's memory on the JS thread (no
// syscall; a load has not started: the object is only the handle's then).
Napi::Value Facts(Napi::Env env, bpf_object* obj) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", bpf_object__name(obj));
  Napi::Array progs = Napi::Array::New(env);
  bpf_program* p;
  bpf_object__for_each_program(p, obj) {
    Napi::Object x = Napi::Object::New(env);
    bpf_prog_type t = bpf_program__type(p);
    bpf_attach_type a = bpf_program__expected_attach_type(p);
    x.Set("name", bpf_program__name(p));
    x.Set("section", bpf_program__section_name(p));
    x.Set("type", Str(libbpf_bpf_prog_type_str(t), t));
    // 0 is BPF_CGROUP_INET_INGRESS, and also "none" for most types
    x.Set("expectedAttachType", a != 0 || t == BPF_PROG_TYPE_CGROUP_SKB
                                    ? Napi::Value(Napi::String::New(env, Str(libbpf_bpf_attach_type_str(a), a)))
                                    : env.Null());
    x.Set("instructions", Napi::Number::New(env, static_cast<double>(bpf_program__insn_cnt(p))));
    progs.Set(progs.Length(), x);
  }
  o.Set("programs", progs);
  Napi::Array maps = Napi::Array::New(env);
  bpf_map* m;
  bpf_object__for_each_map(m, obj) {
    Napi::Object x = Napi::Object::New(env);
    bpf_map_type t = bpf_map__type(m);
    x.Set("name", bpf_map__name(m));
    x.Set("type", Str(libbpf_bpf_map_type_str(t), t));
    x.Set("keySize", bpf_map__key_size(m));
    x.Set("valueSize", bpf_map__value_size(m));
    x.Set("maxEntries", bpf_map__max_entries(m));
    x.Set("internal", bpf_map__is_internal(m));
    maps.Set(maps.Length(), x);
  }
  o.Set("maps", maps);
  Napi::Array globals = Napi::Array::New(env);
  o.Set("globals", globals);
  const btf* b = bpf_object__btf(obj);
  for (uint32_t id = 1; b != nullptr && id < btf__type_cnt(b); id++) {
    const btf_type* t = btf__type_by_id(b, id);
    std::string sec = btf_is_datasec(t) ? btf__name_by_offset(b, t->name_off) : "";
    // data sections only: "license" and ".maps" are datasecs too
    if (sec.rfind(".rodata", 0) != 0 && sec.rfind(".data", 0) != 0 && sec.rfind(".bss", 0) != 0) continue;
    const btf_var_secinfo* vi = btf_var_secinfos(t);
    for (uint16_t i = 0; i < btf_vlen(t); i++, vi++) {
      const btf_type* v = btf__type_by_id(b, vi->type);
      if (!btf_is_var(v) || btf_var(v)->linkage == BTF_VAR_STATIC) continue;
      Napi::Object x = Napi::Object::New(env);
      x.Set("name", btf__name_by_offset(b, v->name_off));
      x.Set("size", vi->size);
      x.Set("offset", vi->offset);
      x.Set("section", sec);
      x.Set("kind", KindOf(b, v->type));
      globals.Set(globals.Length(), x);
    }
  }
  return o;
}

bpf_map* InternalMap(bpf_object* obj, const std::string& section) {
  bpf_map* m;
  bpf_object__for_each_map(m, obj) {
    std::string name = bpf_map__name(m);
    if (bpf_map__is_internal(m) && name.size() >= section.size() &&
        name.compare(name.size() - section.size(), section.size(), section) == 0)
      return m;
  }
  return nullptr;
}

// The verifier's log buffer, mapped for one load.
struct LogBuffer {
  char* data = nullptr;
  LogBuffer() {
    void* p = mmap(nullptr, kLogSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p != MAP_FAILED) data = static_cast<char*>(p);
  }
  ~LogBuffer() {
    if (data) munmap(data, kLogSize);
  }
  LogBuffer(const LogBuffer&) = delete;
  LogBuffer& operator=(const LogBuffer&) = delete;
};

struct Global {
  std::string section;
  uint32_t offset = 0;
  std::vector<uint8_t> bytes;
};
using Pairs = std::vector<std::pair<std::string, std::string>>;

const std::string* Find(const Pairs& pairs, const std::string& key) {
  for (const auto& [k, v] : pairs)
    if (k == key) return &v;
  return nullptr;
}

struct LoadOpts {
  std::string hook;
  std::vector<Global> globals;
  Pairs reuseMaps, pins, programPins, targets;
};

// Every pin this load made is removed again unless it is kept.
struct PinsMade {
  std::vector<std::string> paths;
  bool keep = false;
  ~PinsMade() {
    if (!keep)
      for (const std::string& p : paths) unlink(p.c_str());
  }
};

// fexit reads the traced function's return value: refuse a function that
// has none (the observer's void hooks) before the verifier does, plainly.
// Only hooks are given as targets (bpf_lsm_<hook>): the hook table knows.
bool CheckTarget(bpf_program* p, const std::string& name, const std::string& func, Failure* f) {
  if (bpf_program__expected_attach_type(p) != BPF_TRACE_FEXIT) return true;
  int err = 0;
  const KernelHook* h = func.rfind("bpf_lsm_", 0) == 0 ? FindKernelHook(func.substr(8), &err) : nullptr;
  if (h == nullptr) {
    f->set(err ? err : EINVAL, "load program " + name + ": no LSM hook function " + func + " in the kernel's BTF");
    f->detail("program", name);
    return false;
  }
  if (!h->returnsValue) {
    f->set(EOPNOTSUPP, "load program " + name + ": " + func + " returns void: fexit has no verdict to observe");
    f->detail("program", name).flag("returnsVoid");
    return false;
  }
  return true;
}

void LoadAll(bpf_object* obj, const LoadOpts& opts, std::vector<Made>* made, Failure* f) {
  LogBuffer log;
  if (log.data == nullptr) {
    f->set(ENOMEM, "load object: no memory for the verifier log");
    return;
  }
  bpf_program* p;
  bpf_object__for_each_program(p, obj) {
    std::string name = bpf_program__name(p);
    std::string sec = bpf_program__section_name(p);
    bpf_program__set_log_buf(p, log.data, kLogSize);
    const std::string* target = Find(opts.targets, name);
    int e = 0;
    // SEC("lsm") / SEC("lsm.s"): the file, not the object, picks the hook
    if (bpf_program__type(p) == BPF_PROG_TYPE_LSM && (sec == "lsm" || sec == "lsm.s"))
      e = bpf_program__set_attach_target(p, 0, opts.hook.c_str());
    else if (target != nullptr && !CheckTarget(p, name, *target, f))
      return;
    else if (target != nullptr)
      e = bpf_program__set_attach_target(p, 0, target->c_str());
    if (e != 0) {
      f->set(-e, "load program " + name + ": set attach target " + (target ? *target : opts.hook) + ": " + ErrText(-e));
      f->detail("program", name);
      return;
    }
  }
  for (const Global& g : opts.globals) {
    bpf_map* m = InternalMap(obj, g.section);
    size_t size = 0;
    void* image = m ? const_cast<void*>(bpf_map__initial_value(m, &size)) : nullptr;
    if (image == nullptr || g.offset + g.bytes.size() > size) {
      f->set(EINVAL, "set global: the object has no " + g.section + " map holding offset " + std::to_string(g.offset) +
                         " to write it into");
      return;
    }
    memcpy(static_cast<uint8_t*>(image) + g.offset, g.bytes.data(), g.bytes.size());
  }
  for (const auto& [name, path] : opts.reuseMaps) {
    bpf_map* m = bpf_object__find_map_by_name(obj, name.c_str());
    if (m == nullptr) continue;
    UniqueFd fd(bpf_obj_get(path.c_str()));
    int e = fd.valid() ? bpf_map__reuse_fd(m, fd.get()) : -errno;  // reuse_fd dups the fd
    if (e != 0) {
      f->set(-e, "load object: map " + name + ": reuse the shared map " + path + ": " + ErrText(-e));
      return;
    }
  }
  ClearLibbpfLog();
  log.data[0] = '\0';
  int e = bpf_object__load(obj);
  if (e != 0) {
    // lib/kernel/object.ts says which program and why, from these
    f->set(-e, "load object: " + ErrText(-e));
    f->detail("stage", "load").detail("log", log.data).detail("libbpf", LibbpfLog());
    return;
  }
  std::vector<LinkPtr> links;
  PinsMade pins;
  for (const auto& [name, path] : opts.programPins) {
    bpf_program* q = bpf_object__find_program_by_name(obj, name.c_str());
    if (q == nullptr || bpf_obj_pin(bpf_program__fd(q), path.c_str()) != 0) {
      int err = q ? errno : EINVAL;
      f->set(err, "pin program " + name + " itself at " + path + ": " + ErrText(err));
      f->detail("stage", "pin").detail("program", name);
      return;
    }
    pins.paths.push_back(path);
  }
  bpf_object__for_each_program(p, obj) {
    std::string name = bpf_program__name(p);
    errno = 0;
    LinkPtr l(bpf_program__type(p) == BPF_PROG_TYPE_LSM ? bpf_program__attach_lsm(p) : bpf_program__attach_trace(p));
    if (!l) {
      int err = errno ? errno : EINVAL;
      f->set(err, ErrText(err));
      f->detail("stage", "attach").detail("program", name);
      return;  // links and pins go out of scope: everything detached
    }
    bpf_link_info li = {};
    uint32_t len = sizeof(li);
    if (bpf_obj_get_info_by_fd(bpf_link__fd(l.get()), &li, &len) != 0) {
      f->set(errno, "attach program " + name + ": read link info: " + ErrText(errno));
      return;
    }
    CompanionOfLink(li);  // a companion's function named now, on the load's thread: listings run on the loop
    const std::string* at = Find(opts.pins, name);
    if (at == nullptr || bpf_obj_pin(bpf_link__fd(l.get()), at->c_str()) != 0) {
      int err = at ? errno : EINVAL;
      f->set(err, "pin program " + name + " at " + (at ? *at : "(no pin path given)") + ": " + ErrText(err));
      f->detail("stage", "pin").detail("program", name);
      return;
    }
    pins.paths.push_back(*at);
    made->push_back({name, li.prog_id, li.id});
    links.push_back(std::move(l));
  }
  pins.keep = true;  // our link fds close now: the pins hold the links
}

// One option as lib/kernel/object.ts normalised it: rows of `n` fields
// (absent: none), each handed to `take`, which checks its fields' types.
bool ForRows(Napi::Value v, uint32_t n, const std::function<bool(Napi::Array)>& take) {
  if (v.IsUndefined()) return true;
  if (!v.IsArray()) return false;
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value row = a.Get(i);
    if (!row.IsArray() || row.As<Napi::Array>().Length() != n || !take(row.As<Napi::Array>())) return false;
  }
  return true;
}

// opts' globals ([section, offset, Buffer][]) and pairs ([string, string][]);
// false with a pending TypeError.
bool ToLoadOpts(Napi::Env env, Napi::Object o, LoadOpts* opts) {
  auto pairs = [&](const char* key, Pairs* out) {
    return ForRows(o.Get(key), 2, [&](Napi::Array r) {
      if (!r.Get(0u).IsString() || !r.Get(1u).IsString()) return false;
      out->emplace_back(r.Get(0u).As<Napi::String>().Utf8Value(), r.Get(1u).As<Napi::String>().Utf8Value());
      return true;
    });
  };
  bool ok = ForRows(o.Get("globals"), 3, [&](Napi::Array r) {
    Napi::Value bytes = r.Get(2u);
    if (!r.Get(0u).IsString() || !r.Get(1u).IsNumber() || !bytes.IsBuffer()) return false;
    Napi::Buffer<uint8_t> b = bytes.As<Napi::Buffer<uint8_t>>();
    opts->globals.push_back({r.Get(0u).As<Napi::String>().Utf8Value(), r.Get(1u).As<Napi::Number>().Uint32Value(),
                             std::vector<uint8_t>(b.Data(), b.Data() + b.Length())});
    return true;
  });
  ok = ok && pairs("reuseMaps", &opts->reuseMaps) && pairs("pins", &opts->pins) &&
       pairs("programPins", &opts->programPins) && pairs("targets", &opts->targets);
  if (!ok) Napi::TypeError::New(env, "load: opts must be as lib/kernel/object.ts makes them").ThrowAsJavaScriptException();
  return ok;
}

class Handle : public Napi::ObjectWrap<Handle> {
 public:
  static Napi::Function Define(Napi::Env env, BpfEnvData* data) {
    return DefineClass(env, "OpenedObjectHandle",
                       {InstanceMethod<&Handle::Load>("load", napi_default, data), InstanceMethod<&Handle::Close>("close")});
  }
  explicit Handle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Handle>(info) {
    if (info.Length() == 1 && info[0].IsExternal())
      o_ = *info[0].As<Napi::External<std::shared_ptr<Opened>>>().Data();
  }

 private:
  // load(hook, {globals, reuseMaps, pins, targets}): see lib/kernel/object.ts
  Napi::Value Load(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    LoadOpts opts;
    if (info.Length() < 2 || !info[0].IsString() || !info[1].IsObject()) {
      Napi::TypeError::New(env, "load(hook: string, opts: object)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    opts.hook = info[0].As<Napi::String>().Utf8Value();
    Napi::Object o = info[1].As<Napi::Object>();
    if (!ToLoadOpts(env, o, &opts)) return env.Undefined();
    if (!o_ || o_->used) {
      auto d = Napi::Promise::Deferred::New(env);
      d.Reject(MakeError(env, o_ ? EALREADY : EBADF, o_ ? "load object: this object was loaded already (an object loads once)"
                                                        : "load object: the object was closed"));
      return d.Promise();
    }
    o_->used = true;
    auto opened = o_;
    auto in = std::make_shared<LoadOpts>(std::move(opts));
    auto made = std::make_shared<std::vector<Made>>();
    // a thread of its own: the verifier may run for seconds, and the pool
    // stays free for everyone else's quick calls
    return OnOwnThread(env, static_cast<BpfEnvData*>(info.Data()), "krsifs:load", true,
                [opened, in, made](Failure* f) {
                  LoadAll(opened->obj.get(), *in, made.get(), f);
                  opened->obj.reset();  // loaded or failed, libbpf's copy is no longer needed: the links hold the programs
                  // libbpf parsed the kernel's BTF (megabytes) on this thread and freed it:
                  // glibc keeps freed memory in the thread's arena, which outlives the
                  // thread (the next one takes it), so without a trim each arena holds
                  // on to a copy's worth for the process's life
                  malloc_trim(0);
                },
                [made](Napi::Env env) {
                  Napi::Array out = Napi::Array::New(env, made->size());
                  for (size_t i = 0; i < made->size(); i++) out.Set(i, MadeValue(env, (*made)[i], true));
                  return out;
                });
  }
  // A load in flight keeps its own reference: it frees the object when done.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    o_.reset();
    return info.Env().Undefined();
  }

  std::shared_ptr<Opened> o_;
};

Napi::Value OpenObjectJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsBuffer()) {
    Napi::TypeError::New(env, "openObject: expected a Buffer").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Buffer<uint8_t> b = info[0].As<Napi::Buffer<uint8_t>>();
  std::string name = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
  auto data = static_cast<BpfEnvData*>(info.Data());
  auto o = std::make_shared<Opened>();
  auto in = std::make_shared<std::vector<uint8_t>>(b.Data(), b.Data() + b.Length());
  return Work(env, "krsifs:openObject", [o, in, name](Failure* f) { o->obj = OpenObject(*in, name, f); },
              [o, data](Napi::Env env) { return NewOpened(env, data, o); });
}
}  // namespace

Napi::Value NewOpened(Napi::Env env, BpfEnvData* data, std::shared_ptr<Opened> o) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("facts", Facts(env, o->obj.get()));
  // the External only lives for the constructor call
  out.Set("handle", data->openedCtor.New({Napi::External<std::shared_ptr<Opened>>::New(env, &o)}));
  return out;
}

void InitObject(Napi::Env env, Napi::Object exports, BpfEnvData* data) {
  data->openedCtor = Napi::Persistent(Handle::Define(env, data));
  exports.Set("openObject", Napi::Function::New(env, OpenObjectJs, "openObject", data));
}

}  // namespace krsi
