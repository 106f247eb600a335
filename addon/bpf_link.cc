#include "bpf_link.h"

namespace krsi {

int ReadLinkIds(LinkState* s) {
  bpf_link_info info = {};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(bpf_link__fd(s->link.get()), &info, &len) != 0) return errno;
  s->id = info.id;
  s->progId = info.prog_id;
  return 0;
}

namespace {

enum class LinkOp { kDetach, kClose, kPin, kUnpin };

// One worker for the four operations: each is one short libbpf call on the
// link, but pin/unpin touch a filesystem and detach waits for the kernel.
class LinkOpWorker : public PromiseWorker {
 public:
  LinkOpWorker(Napi::Env env, const char* resource, LinkOp op, std::shared_ptr<LinkState> s, std::string path)
      : PromiseWorker(env, resource), op_(op), s_(std::move(s)), path_(std::move(path)) {}

 protected:
  void Run() override {
    std::lock_guard<std::mutex> lock(s_->mu);
    std::string what = std::string(op_ == LinkOp::kPin ? "pin" : op_ == LinkOp::kUnpin ? "unpin" : "detach") +
                       " link " + s_->name;
    if (!s_->link) {
      // detach/close/unpin of a detached link: nothing to do, as close() twice
      if (op_ == LinkOp::kPin) failure_.set(EBADF, what + ": the link is detached");
      return;
    }
    int err = 0;
    switch (op_) {
      case LinkOp::kPin:
        err = bpf_link__pin(s_->link.get(), path_.c_str());
        break;
      case LinkOp::kUnpin:
        if (bpf_link__pin_path(s_->link.get()) != nullptr) err = bpf_link__unpin(s_->link.get());
        break;
      case LinkOp::kDetach:
        // a pin keeps the link (and the program) attached: detach means gone
        if (bpf_link__pin_path(s_->link.get()) != nullptr) {
          err = bpf_link__unpin(s_->link.get());
          if (err == -ENOENT) err = 0;  // someone removed the pin already
        }
        if (err == 0) {
          s_->link.reset();
          s_->object.reset();
        }
        break;
      case LinkOp::kClose:
        s_->link.reset();  // the kernel keeps a pinned link attached
        s_->object.reset();
        break;
    }
    if (err != 0) {
      failure_.set(-err, what + (path_.empty() ? "" : " at " + path_) + ": " + ErrText(-err));
    }
  }
  Napi::Value Result(Napi::Env env) override { return env.Undefined(); }

 private:
  LinkOp op_;
  std::shared_ptr<LinkState> s_;
  std::string path_;
};

class Link : public Napi::ObjectWrap<Link> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Link",
                       {
                           InstanceMethod<&Link::Detach>("detach"),
                           InstanceMethod<&Link::Close>("close"),
                           InstanceMethod<&Link::Pin>("pin"),
                           InstanceMethod<&Link::Unpin>("unpin"),
                           InstanceAccessor<&Link::Id>("id"),
                           InstanceAccessor<&Link::ProgId>("progId"),
                           InstanceAccessor<&Link::Name>("name"),
                           InstanceAccessor<&Link::PinPath>("pinPath"),
                           InstanceAccessor<&Link::Attached>("attached"),
                       });
  }

  explicit Link(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Link>(info) {
    if (info.Length() != 1 || !info[0].IsExternal()) {
      Napi::TypeError::New(info.Env(), "Link: made by loadAndAttach or openPinnedLink, not by new")
          .ThrowAsJavaScriptException();
      return;
    }
    auto* s = info[0].As<Napi::External<std::shared_ptr<LinkState>>>().Data();
    state_ = *s;
  }

  // Garbage collection closes the fd: a link that is not pinned is detached
  // by the kernel then. Keep a reference (or pin) for as long as it must stay.
  ~Link() override = default;

 private:
  Napi::Value Op(const Napi::CallbackInfo& info, const char* resource, LinkOp op) {
    std::string path;
    if (op == LinkOp::kPin) {
      if (info.Length() < 1 || !info[0].IsString()) {
        Napi::TypeError::New(info.Env(), "link.pin(path: string)").ThrowAsJavaScriptException();
        return info.Env().Undefined();
      }
      path = info[0].As<Napi::String>().Utf8Value();
    }
    return (new LinkOpWorker(info.Env(), resource, op, state_, path))->Queue();
  }
  Napi::Value Detach(const Napi::CallbackInfo& info) { return Op(info, "krsifs:DetachWorker", LinkOp::kDetach); }
  Napi::Value Close(const Napi::CallbackInfo& info) { return Op(info, "krsifs:CloseWorker", LinkOp::kClose); }
  Napi::Value Pin(const Napi::CallbackInfo& info) { return Op(info, "krsifs:PinWorker", LinkOp::kPin); }
  Napi::Value Unpin(const Napi::CallbackInfo& info) { return Op(info, "krsifs:UnpinWorker", LinkOp::kUnpin); }

  Napi::Value Id(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), state_ ? state_->id : 0); }
  Napi::Value ProgId(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), state_ ? state_->progId : 0);
  }
  Napi::Value Name(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), state_ ? state_->name : "");
  }
  // Read without the mutex would race a PinWorker: take it, the calls under it are short.
  Napi::Value PinPath(const Napi::CallbackInfo& info) {
    if (!state_) return info.Env().Null();
    std::lock_guard<std::mutex> lock(state_->mu);
    const char* p = state_->link ? bpf_link__pin_path(state_->link.get()) : nullptr;
    return p ? Napi::String::New(info.Env(), p) : info.Env().Null();
  }
  Napi::Value Attached(const Napi::CallbackInfo& info) {
    if (!state_) return Napi::Boolean::New(info.Env(), false);
    std::lock_guard<std::mutex> lock(state_->mu);
    return Napi::Boolean::New(info.Env(), state_->link != nullptr);
  }

  std::shared_ptr<LinkState> state_;
};

// openPinnedLink(path): a Link for a link pinned in bpffs (bpf_link__open).
class OpenPinnedLinkWorker : public PromiseWorker {
 public:
  OpenPinnedLinkWorker(Napi::Env env, BpfEnvData* data, std::string path)
      : PromiseWorker(env, "krsifs:OpenPinnedLinkWorker"), data_(data), path_(std::move(path)) {}

 protected:
  void Run() override {
    state_ = std::make_shared<LinkState>();
    errno = 0;
    bpf_link* l = bpf_link__open(path_.c_str());
    if (l == nullptr) {
      int e = errno ? errno : ENOENT;
      failure_.set(e, "open pinned link " + path_ + ": " + ErrText(e));
      return;
    }
    state_->link.reset(l);
    std::string kind = BpfFdKind(bpf_link__fd(l));
    if (kind != "link") {
      failure_.set(EINVAL, "open pinned link " + path_ + ": " + (kind.empty() ? "not a bpf object" : "a " + kind + ", not a link"));
      return;
    }
    int err = ReadLinkIds(state_.get());
    if (err != 0) {
      failure_.set(err, "open pinned link " + path_ + ": not a link? " + ErrText(err));
      return;
    }
    bpf_prog_info pi = {};
    uint32_t len = sizeof(pi);
    UniqueFd pfd(bpf_prog_get_fd_by_id(state_->progId));
    if (pfd.valid() && bpf_obj_get_info_by_fd(pfd.get(), &pi, &len) == 0) state_->name = pi.name;
  }
  Napi::Value Result(Napi::Env env) override { return NewLink(env, data_, state_); }

 private:
  BpfEnvData* data_;
  std::string path_;
  std::shared_ptr<LinkState> state_;
};

Napi::Value OpenPinnedLink(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "openPinnedLink(path: string)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto* data = static_cast<BpfEnvData*>(info.Data());
  return (new OpenPinnedLinkWorker(env, data, info[0].As<Napi::String>().Utf8Value()))->Queue();
}

}  // namespace

Napi::Value NewLink(Napi::Env env, BpfEnvData* data, std::shared_ptr<LinkState> state) {
  std::shared_ptr<LinkState> holder = std::move(state);
  // the External only lives for the constructor call
  Napi::External<std::shared_ptr<LinkState>> ext = Napi::External<std::shared_ptr<LinkState>>::New(env, &holder);
  return data->linkCtor.New({ext});
}

void InitLink(Napi::Env env, Napi::Object exports, BpfEnvData* data) {
  Napi::Function ctor = Link::Define(env);
  data->linkCtor = Napi::Persistent(ctor);
  exports.Set("Link", ctor);
  exports.Set("openPinnedLink", Napi::Function::New(env, OpenPinnedLink, "openPinnedLink", data));
}

}  // namespace krsi
