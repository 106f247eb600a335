// linkInfo(id), progInfo(id): what the kernel says about a link or a program
// it holds, by id. ENOENT when it is gone. linkIds(): every link id the
// kernel holds now (to count the links on one hook when an attach gets E2BIG).
#include <string.h>

#include "bpf_common.h"

namespace krsi {

namespace {
std::string Hex(const uint8_t* p, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; i++) {
    s += digits[p[i] >> 4];
    s += digits[p[i] & 15];
  }
  return s;
}

// The vmlinux BTF function name for a type id, "bpf_lsm_" stripped ("" if none).
std::string HookOfBtfId(uint32_t objId, uint32_t btfId) {
  (void)objId;  // LSM hooks live in vmlinux; a module's BTF would need its own object
  return HookOfVmlinuxId(btfId);
}

class LinkInfoWorker : public PromiseWorker {
 public:
  LinkInfoWorker(Napi::Env env, uint32_t id) : PromiseWorker(env, "krsifs:LinkInfoWorker"), id_(id) {}

 protected:
  void Run() override {
    UniqueFd fd(bpf_link_get_fd_by_id(id_));
    if (!fd.valid()) {
      failure_.set(errno, "link info " + std::to_string(id_) + ": " + ErrText(errno));
      return;
    }
    uint32_t len = sizeof(info_);
    if (bpf_obj_get_info_by_fd(fd.get(), &info_, &len) != 0) {
      failure_.set(errno, "link info " + std::to_string(id_) + ": " + ErrText(errno));
      return;
    }
    if (info_.type == BPF_LINK_TYPE_TRACING) hook_ = HookOfBtfId(info_.tracing.target_obj_id, info_.tracing.target_btf_id);
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("id", info_.id);
    o.Set("progId", info_.prog_id);
    const char* t = libbpf_bpf_link_type_str(static_cast<bpf_link_type>(info_.type));
    o.Set("type", t ? t : "unknown");
    bool tracing = info_.type == BPF_LINK_TYPE_TRACING;
    const char* a = tracing ? libbpf_bpf_attach_type_str(static_cast<bpf_attach_type>(info_.tracing.attach_type)) : nullptr;
    o.Set("attachType", a ? Napi::Value(Napi::String::New(env, a)) : env.Null());
    o.Set("targetObjId", tracing ? Napi::Value(Napi::Number::New(env, info_.tracing.target_obj_id)) : env.Null());
    o.Set("targetBtfId", tracing ? Napi::Value(Napi::Number::New(env, info_.tracing.target_btf_id)) : env.Null());
    o.Set("hook", hook_.empty() ? env.Null() : Napi::Value(Napi::String::New(env, hook_)));
    return o;
  }

 private:
  uint32_t id_;
  bpf_link_info info_ = {};
  std::string hook_;
};

class ProgInfoWorker : public PromiseWorker {
 public:
  ProgInfoWorker(Napi::Env env, uint32_t id) : PromiseWorker(env, "krsifs:ProgInfoWorker"), id_(id) {}

 protected:
  void Run() override {
    UniqueFd fd(bpf_prog_get_fd_by_id(id_));
    if (!fd.valid()) {
      failure_.set(errno, "program info " + std::to_string(id_) + ": " + ErrText(errno));
      return;
    }
    uint32_t len = sizeof(info_);
    if (bpf_obj_get_info_by_fd(fd.get(), &info_, &len) != 0) {
      failure_.set(errno, "program info " + std::to_string(id_) + ": " + ErrText(errno));
      return;
    }
    if (info_.type == BPF_PROG_TYPE_LSM) hook_ = HookOfBtfId(info_.attach_btf_obj_id, info_.attach_btf_id);
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("id", info_.id);
    o.Set("name", std::string(info_.name, strnlen(info_.name, sizeof(info_.name))));
    const char* t = libbpf_bpf_prog_type_str(static_cast<bpf_prog_type>(info_.type));
    o.Set("type", t ? t : "unknown");
    o.Set("tag", Hex(info_.tag, sizeof(info_.tag)));
    // load_time is nanoseconds since boot (CLOCK_BOOTTIME)
    o.Set("loadTimeNs", Napi::BigInt::New(env, static_cast<uint64_t>(info_.load_time)));
    o.Set("uid", info_.created_by_uid);
    o.Set("btfId", info_.btf_id);
    o.Set("attachBtfId", info_.attach_btf_id);
    o.Set("hook", hook_.empty() ? env.Null() : Napi::Value(Napi::String::New(env, hook_)));
    o.Set("gplCompatible", Napi::Boolean::New(env, info_.gpl_compatible));
    return o;
  }

 private:
  uint32_t id_;
  bpf_prog_info info_ = {};
  std::string hook_;
};

class LinkIdsWorker : public PromiseWorker {
 public:
  explicit LinkIdsWorker(Napi::Env env) : PromiseWorker(env, "krsifs:LinkIdsWorker") {}

 protected:
  void Run() override {
    uint32_t id = 0;
    for (;;) {
      if (bpf_link_get_next_id(id, &id) != 0) {
        if (errno != ENOENT) failure_.set(errno, "list links: " + ErrText(errno));
        return;  // ENOENT: no link after id, the walk is done
      }
      ids_.push_back(id);
    }
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Array out = Napi::Array::New(env, ids_.size());
    for (size_t i = 0; i < ids_.size(); i++) out.Set(i, ids_[i]);
    return out;
  }

 private:
  std::vector<uint32_t> ids_;
};

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
  return (new LinkInfoWorker(info.Env(), id))->Queue();
}
Napi::Value ProgInfo(const Napi::CallbackInfo& info) {
  uint32_t id;
  if (!IdArg(info, "progInfo", &id)) return info.Env().Undefined();
  return (new ProgInfoWorker(info.Env(), id))->Queue();
}
Napi::Value LinkIds(const Napi::CallbackInfo& info) { return (new LinkIdsWorker(info.Env()))->Queue(); }
}  // namespace

void InitInfo(Napi::Env env, Napi::Object exports) {
  exports.Set("linkIds", Napi::Function::New(env, LinkIds, "linkIds"));
  exports.Set("linkInfo", Napi::Function::New(env, LinkInfo, "linkInfo"));
  exports.Set("progInfo", Napi::Function::New(env, ProgInfo, "progInfo"));
}

}  // namespace krsi
