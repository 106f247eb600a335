// The FUSE session on the Node loop: mount, drain the fd when readable,
// hand requests to JS, tear down once.
#include "fuse_session.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace krsi::fuse {

namespace {
// Most requests handled per readable event before yielding to the rest of
// the loop (timers, replies); the poll is level-triggered and comes back.
constexpr int kMaxPerWakeup = 256;

// A JS exception from a callback we made: the addon cannot throw it to
// anyone, so it becomes a process warning instead of vanishing.
void Warn(Napi::Env env, Napi::Value error) {
  Napi::Value process = env.Global().Get("process");
  if (process.IsObject()) {
    Napi::Value emit = process.As<Napi::Object>().Get("emitWarning");
    if (emit.IsFunction()) emit.As<Napi::Function>().Call(process, {error});
  }
  if (env.IsExceptionPending()) env.GetAndClearPendingException();
}
}  // namespace

Session::Session(Napi::Env env, std::string mountpoint, Napi::Function dispatch, Napi::Function onUnmounted)
    : env_(env), mountpoint_(std::move(mountpoint)) {
  dispatch_ = Napi::Persistent(dispatch);
  if (!onUnmounted.IsEmpty()) onUnmounted_ = Napi::Persistent(onUnmounted);
  async_ = std::make_unique<Napi::AsyncContext>(env, "krsifs:fuse");
}

Session::~Session() {
  // Only reached once nothing references the session (a live mount holds
  // self_), so no shared_from_this here: it would abort on an expired owner.
  if (se_ != nullptr) Teardown(false, false);
}

int Session::Mount(const std::vector<std::string>& options, std::string* message) {
  const std::string what = "mount " + mountpoint_ + ": ";
  // libfuse reports these only as log text; check first to get a real errno.
  struct stat st;
  if (int err = StatLive(mountpoint_, &st); err != 0) {
    *message = what + strerror(err);
    if (err == ENOTCONN) *message += " (a FUSE mount whose daemon died is still there: detach it first)";
    return err;
  }
  if (!S_ISDIR(st.st_mode)) {
    *message = what + "not a directory";
    return ENOTDIR;
  }

  std::string joined;
  for (const auto& o : options) joined += (joined.empty() ? "" : ",") + o;
  fuse_args args = FUSE_ARGS_INIT(0, nullptr);
  fuse_opt_add_arg(&args, "krsifs");
  if (!joined.empty()) {
    fuse_opt_add_arg(&args, "-o");
    fuse_opt_add_arg(&args, joined.c_str());
  }
  StartLogCapture();
  se_ = fuse_session_new(&args, &LowLevelOps(), sizeof(fuse_lowlevel_ops), this);
  fuse_opt_free_args(&args);
  if (se_ == nullptr) {
    std::string log = StopLogCapture();
    *message = what + (log.empty() ? "cannot create the session (options: " + joined + ")" : log);
    return EINVAL;
  }
  errno = 0;
  int res = fuse_session_mount(se_, mountpoint_.c_str());
  int err = errno;
  std::string log = StopLogCapture();
  if (res != 0) {
    *message = what + (log.empty() ? strerror(err ? err : EIO) : log);
    fuse_session_destroy(se_);
    se_ = nullptr;
    return err ? err : EIO;
  }
  if (!log.empty()) fprintf(stderr, "krsifs: %s\n", log.c_str());

  // From here on the kernel sends requests; serve them from the loop.
  int fd = fuse_session_fd(se_);
  int flags = fcntl(fd, F_GETFL);
  uv_loop_t* loop = nullptr;
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    err = errno;
    *message = what + "set O_NONBLOCK on /dev/fuse: " + strerror(err);
  } else if (napi_get_uv_event_loop(env_, &loop) != napi_ok) {
    err = EIO;
    *message = what + "no event loop";
  } else {
    int uerr = poll_.Start(loop, fd, this, OnPoll);
    if (uerr == 0) {
      self_ = shared_from_this();
      return 0;
    }
    err = -uerr;
    *message = what + "watch /dev/fuse: " + uv_strerror(uerr);
  }
  fuse_session_unmount(se_);
  fuse_session_destroy(se_);
  se_ = nullptr;
  return err;
}

void Session::OnPoll(uv_poll_t* handle, int status, int events) {
  auto* s = static_cast<Session*>(handle->data);
  if (s == nullptr) return;
  auto keep = s->shared_from_this();  // Close() drops self_; outlive the scopes below
  Napi::HandleScope handles(s->env_);
  // Promise jobs and nextTicks queued by the handlers run when this closes.
  Napi::CallbackScope callbacks(s->env_, *s->async_);
  // UV_EBADF here means POLLERR: the connection was aborted (umount -l).
  if (status < 0) {
    s->Close(true, true);
    return;
  }
  s->Drain();
}

void Session::Drain() {
  bool lost = false;
  draining_ = true;
  for (int i = 0; i < kMaxPerWakeup && se_ != nullptr && !closeRequested_; i++) {
    int res = fuse_session_receive_buf(se_, &buf_);
    if (res == -EINTR) continue;
    if (res == -EAGAIN) break;
    // 0: ENODEV, the filesystem was unmounted behind our back; <0: broken fd.
    if (res <= 0 || fuse_session_exited(se_)) {
      lost = true;
      break;
    }
    fuse_session_process_buf(se_, &buf_);
  }
  draining_ = false;
  if (closeRequested_) {
    Close(false, false);
  } else if (lost) {
    Close(true, true);
  }
}

void Session::Dispatch(const char* op, const std::shared_ptr<Request>& r, Napi::Object obj) {
  Napi::Env env = env_;
  r->session = this;
  obj.Set("caller", CallerOf(env, r->req));  // before any reply frees req
  pending_.emplace(r.get(), r);
  dispatch_.Call({Napi::String::New(env, op), obj, MakeReply(env, r)});
  if (env.IsExceptionPending()) {
    Napi::Error e = env.GetAndClearPendingException();
    ReplyError(r.get(), EIO);
    Warn(env, e.Value());
  }
}

int Session::NotifyPoll(fuse_pollhandle* ph) {
  // ph names this session's fuse_session, which Close() destroys.
  if (se_ == nullptr) return -ENOTCONN;
  // A write of a notification to /dev/fuse: it does not wait for the kernel's
  // pollers. Harmless if nobody polls that file any more (the kernel ignores
  // an unknown handle).
  return fuse_lowlevel_notify_poll(ph);
}

int StatLive(const std::string& path, struct stat* st) {
  struct statfs fs;
  if (stat(path.c_str(), st) != 0 || statfs(path.c_str(), &fs) != 0) return errno;
  return 0;
}

void Session::Invalidate(fuse_ino_t ino) {
  fixedAttrs_.erase(ino);
  // Attributes only (a negative offset): no page to drop, so the kernel takes
  // no lock that a request waiting for us (a write in flight) may hold.
  // -ENOENT when the kernel does not hold the inode: nothing to do.
  if (se_ != nullptr) fuse_lowlevel_notify_inval_inode(se_, ino, -1, 0);
}

bool PollWaker::Notify() {
  if (!ph_) return false;
  PollHandle ph = std::move(ph_);  // freed on return, whatever happens
  auto s = session_.lock();
  return s != nullptr && s->NotifyPoll(ph.get()) == 0;
}

Napi::Object PollWaker::ToJs(Napi::Env env, const std::shared_ptr<PollWaker>& self) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("notify", Napi::Function::New(
                      env, [self](const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), self->Notify()); }, "notify"));
  o.Set("drop", Napi::Function::New(
                    env,
                    [self](const Napi::CallbackInfo& info) {
                      self->Drop();
                      return info.Env().Undefined();
                    },
                    "drop"));
  return o;
}

void Session::Close(bool lost, bool notify) {
  if (se_ == nullptr) return;
  if (draining_) {
    // Called from a handler inside fuse_session_process_buf: libfuse is
    // still using the session. Drain() finishes the job when it returns.
    closeRequested_ = true;
    return;
  }
  auto keep = shared_from_this();  // self_ may be the last owner
  Teardown(lost, notify);
}

void Session::Teardown(bool lost, bool notify) {
  poll_.Stop();
  // Marks the session exited: replies to a dead channel then fail quietly.
  fuse_session_exit(se_);
  auto pending = std::move(pending_);
  pending_.clear();
  for (auto& entry : pending) ReplyError(entry.first, EIO);
  // Closes the fd, then umount2(MNT_DETACH) unless the kernel already dropped
  // the connection (POLLERR on the fd).
  fuse_session_unmount(se_);
  fuse_session_destroy(se_);
  se_ = nullptr;
  free(buf_.mem);
  buf_ = fuse_buf{};
  if (notify && !onUnmounted_.IsEmpty()) {
    Napi::HandleScope scope(env_);
    onUnmounted_.Call({Napi::Boolean::New(env_, lost)});
    if (env_.IsExceptionPending()) Warn(env_, env_.GetAndClearPendingException().Value());
  }
  self_.reset();
}

}  // namespace krsi::fuse
