// The FUSE part of the addon's exports:
//   fuseMount(mountpoint, options, dispatch, onUnmounted?) -> { mountpoint, unmount(), isMounted() }
//   detachStaleMount(mountpoint) -> { wasStale }
#include <sys/mount.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "errors.h"
#include "fuse_session.h"

namespace krsi {

namespace {

using fuse::Session;

// Throws KrsiError: ENOENT/ENOTDIR/EACCES (mount point), ENOTCONN (a stale
// FUSE mount is there), EINVAL (options libfuse rejects), mount(2)'s errno.
Napi::Value FuseMount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsString() || !info[1].IsArray() || !info[2].IsFunction() ||
      (info.Length() > 3 && !info[3].IsFunction() && !info[3].IsUndefined())) {
    Napi::TypeError::New(env, "fuseMount(mountpoint: string, options: string[], dispatch: Function, onUnmounted?: Function)")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string mountpoint = info[0].As<Napi::String>().Utf8Value();
  Napi::Array opts = info[1].As<Napi::Array>();
  std::vector<std::string> options;
  for (uint32_t i = 0; i < opts.Length(); i++) {
    Napi::Value o = opts.Get(i);
    if (!o.IsString()) {
      Napi::TypeError::New(env, "fuseMount: options must be strings").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    options.push_back(o.As<Napi::String>().Utf8Value());
  }
  Napi::Function onUnmounted = info.Length() > 3 && info[3].IsFunction() ? info[3].As<Napi::Function>() : Napi::Function();

  auto session = std::make_shared<Session>(env, mountpoint, info[2].As<Napi::Function>(), onUnmounted);
  std::string message;
  int err = session->Mount(options, &message);
  if (err != 0) {
    ThrowError(env, err, message);
    return env.Undefined();
  }

  // A worker's env can go away with the mount up: unmount then (no JS).
  std::weak_ptr<Session> weak = session;
  env.AddCleanupHook([weak]() {
    if (auto s = weak.lock()) s->Close(false, false);
  });

  Napi::Object handle = Napi::Object::New(env);
  handle.Set("mountpoint", Napi::String::New(env, mountpoint));
  // Idempotent. Requests still pending are answered EIO; the mount is
  // detached lazily (MNT_DETACH), so busy clients do not make it fail.
  handle.Set("unmount", Napi::Function::New(
                            env,
                            [session](const Napi::CallbackInfo& info) -> Napi::Value {
                              session->Close(false, false);
                              return info.Env().Undefined();
                            },
                            "unmount"));
  // The attributes of inode `ino` changed (they were given as fixed).
  handle.Set("invalidate", Napi::Function::New(
                               env,
                               [session](const Napi::CallbackInfo& info) -> Napi::Value {
                                 if (info.Length() > 0 && info[0].IsNumber()) session->Invalidate(info[0].As<Napi::Number>().Int64Value());
                                 return info.Env().Undefined();
                               },
                               "invalidate"));
  handle.Set("isMounted", Napi::Function::New(
                              env,
                              [session](const Napi::CallbackInfo& info) -> Napi::Value {
                                return Napi::Boolean::New(info.Env(), session->mounted());
                              },
                              "isMounted"));
  return handle;
}

// A FUSE mount whose daemon died answers every access with ENOTCONN; detach
// it so the directory underneath is usable again. Anything else is left
// alone. Never call it on a live mount served by this very process: statfs()
// would wait on our own blocked loop.
// Throws KrsiError with umount2's errno (EPERM without CAP_SYS_ADMIN).
Napi::Value DetachStaleMount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "detachStaleMount(mountpoint: string)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string mountpoint = info[0].As<Napi::String>().Utf8Value();
  struct stat st;
  bool stale = fuse::StatLive(mountpoint, &st) == ENOTCONN;
  if (stale && umount2(mountpoint.c_str(), MNT_DETACH) != 0) {
    int err = errno;
    ThrowError(env, err, "detach stale mount " + mountpoint + ": " + strerror(err));
    return env.Undefined();
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("wasStale", Napi::Boolean::New(env, stale));
  return out;
}

}  // namespace

void InitFuse(Napi::Env env, Napi::Object exports) {
  exports.Set("fuseMount", Napi::Function::New(env, FuseMount, "fuseMount"));
  exports.Set("detachStaleMount", Napi::Function::New(env, DetachStaleMount, "detachStaleMount"));
}

}  // namespace krsi
