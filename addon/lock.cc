// lock(path): an exclusive flock(2) on path (a directory or a file, created
// 0600 when missing), held for as long as this process lives: one daemon per
// mountpoint and per pin root. The kernel lets go when the process dies,
// however it dies, so a crash never leaves a stale lock behind.
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "errors.h"

namespace krsi {

namespace {
Napi::Value Lock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "lock(path: string)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string path = info[0].As<Napi::String>().Utf8Value();
  // O_NONBLOCK: a fifo put where the lock file should be must not hang start-up
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0 && errno == ENOENT) fd = open(path.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    int err = errno;
    ThrowError(env, err, "lock " + path + ": " + strerror(err));
    return env.Undefined();
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    close(fd);
    ThrowError(env, err == EWOULDBLOCK ? EBUSY : err, "lock " + path + ": " + (err == EWOULDBLOCK ? "held by another process" : strerror(err)));
    return env.Undefined();
  }
  // never closed: the lock lasts as long as the process
  return Napi::Number::New(env, fd);
}
}  // namespace

void InitLock(Napi::Env env, Napi::Object exports) {
  exports.Set("lock", Napi::Function::New(env, Lock, "lock"));
}

}  // namespace krsi
