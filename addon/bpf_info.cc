// linkInfo(id), progInfo(id): what the kernel says about a link or a program
// it holds, by id. ENOENT when it is gone. linkIds(): every link id the
// kernel holds now (to count the links on one hook when an attach gets E2BIG).
#include <string.h>

#include "bpf_common.h"

namespace krsi {

namespace {
// The info struct of the link or program with this id, and the LSM hook its
// target BTF id names (the hook table may be read: on the pool, never on JS's).
template <typename Info>
struct Described {
  Info info = {};
  std::string hook;
};
template <typename Info>
std::function<void(Failure*)> ReadInfo(int (*getFd)(__u32), const char* what, uint32_t id,
                                       std::shared_ptr<Described<Info>> d, uint32_t (*hookId)(const Info&)) {
  return [=](Failure* f) {
    UniqueFd fd(getFd(id));
    uint32_t len = sizeof(Info);
    if (!fd.valid() || bpf_obj_get_info_by_fd(fd.get(), &d->info, &len) != 0) {
      int e = errno;
      f->set(e, std::string(what) + " " + std::to_string(id) + ": " + ErrText(e));
    } else if (uint32_t btfId = hookId(d->info)) {
      d->hook = HookOfVmlinuxId(btfId);  // LSM hooks live in vmlinux
    }
  };
}

Napi::Value Text(Napi::Env env, const char* s) { return Napi::String::New(env, s ? s : "unknown"); }
Napi::Value TextOrNull(Napi::Env env, const std::string& s) { return s.empty() ? env.Null() : Napi::String::New(env, s); }

bool IdArg(const Napi::CallbackInfo& info, const char* fn, uint32_t* id) {
  if (info.Length() < 1 || !info[0].IsNumber() || info[0].As<Napi::Number>().DoubleValue() < 0 ||
      info[0].As<Napi::Number>().DoubleValue() > 4294967295.0) {
    Napi::TypeError::New(info.Env(), std::string(fn) + "(id: number)").ThrowAsJavaScriptException();
    return false;
  }
  *id = info[0].As<Napi::Number>().Uint32Value();
  return true;
}

Napi::Value LinkInfo(const Napi::CallbackInfo& info) {
  uint32_t id;
  if (!IdArg(info, "linkInfo", &id)) return info.Env().Undefined();
  auto d = std::make_shared<Described<bpf_link_info>>();
  auto hookId = [](const bpf_link_info& i) { return i.type == BPF_LINK_TYPE_TRACING ? i.tracing.target_btf_id : 0u; };
  return Work(info.Env(), "krsifs:linkInfo", ReadInfo(bpf_link_get_fd_by_id, "link info", id, d, +hookId), [d](Napi::Env env) {
    const bpf_link_info* li = &d->info;
    Napi::Object o = Napi::Object::New(env);
    o.Set("id", li->id);
    o.Set("progId", li->prog_id);
    o.Set("type", Text(env, libbpf_bpf_link_type_str(static_cast<bpf_link_type>(li->type))));
    bool tracing = li->type == BPF_LINK_TYPE_TRACING;
    Napi::Value null = env.Null();
    const char* a = tracing ? libbpf_bpf_attach_type_str(static_cast<bpf_attach_type>(li->tracing.attach_type)) : nullptr;
    o.Set("attachType", a ? Napi::Value(Napi::String::New(env, a)) : null);
    o.Set("targetObjId", tracing ? Napi::Value(Napi::Number::New(env, li->tracing.target_obj_id)) : null);
    o.Set("targetBtfId", tracing ? Napi::Value(Napi::Number::New(env, li->tracing.target_btf_id)) : null);
    o.Set("hook", TextOrNull(env, d->hook));
    return o;
  });
}

Napi::Value ProgInfo(const Napi::CallbackInfo& info) {
  uint32_t id;
  if (!IdArg(info, "progInfo", &id)) return info.Env().Undefined();
  auto d = std::make_shared<Described<bpf_prog_info>>();
  auto hookId = [](const bpf_prog_info& i) { return i.type == BPF_PROG_TYPE_LSM ? i.attach_btf_id : 0u; };
  return Work(info.Env(), "krsifs:progInfo", ReadInfo(bpf_prog_get_fd_by_id, "program info", id, d, +hookId), [d](Napi::Env env) {
    const bpf_prog_info* pi = &d->info;
    Napi::Object o = Napi::Object::New(env);
    o.Set("id", pi->id);
    o.Set("name", std::string(pi->name, strnlen(pi->name, sizeof(pi->name))));
    o.Set("type", Text(env, libbpf_bpf_prog_type_str(static_cast<bpf_prog_type>(pi->type))));
    o.Set("tag", Napi::Buffer<uint8_t>::Copy(env, pi->tag, sizeof(pi->tag)));  // hex in lib/kernel/index.ts
    // load_time is nanoseconds since boot (CLOCK_BOOTTIME)
    o.Set("loadTimeNs", Napi::BigInt::New(env, static_cast<uint64_t>(pi->load_time)));
    o.Set("uid", pi->created_by_uid);
    o.Set("btfId", pi->btf_id);
    o.Set("attachBtfId", pi->attach_btf_id);
    o.Set("hook", TextOrNull(env, d->hook));
    o.Set("gplCompatible", Napi::Boolean::New(env, pi->gpl_compatible));
    return o;
  });
}

Napi::Value LinkIds(const Napi::CallbackInfo& info) {
  auto ids = std::make_shared<std::vector<uint32_t>>();
  return Work(info.Env(), "krsifs:linkIds",
              [ids](Failure* f) {
                uint32_t id = 0;
                while (bpf_link_get_next_id(id, &id) == 0) ids->push_back(id);
                int e = errno;  // ENOENT: no link after the last one, the walk is done
                if (e != ENOENT) f->set(e, "list links: " + ErrText(e));
              },
              [ids](Napi::Env env) {
                Napi::Array out = Napi::Array::New(env, ids->size());
                for (size_t i = 0; i < ids->size(); i++) out.Set(i, (*ids)[i]);
                return out;
              });
}
}  // namespace

void InitInfo(Napi::Env env, Napi::Object exports) {
  exports.Set("linkIds", Napi::Function::New(env, LinkIds, "linkIds"));
  exports.Set("linkInfo", Napi::Function::New(env, LinkInfo, "linkInfo"));
  exports.Set("progInfo", Napi::Function::New(env, ProgInfo, "progInfo"));
}

}  // namespace krsi
