// notify(socket, message): one datagram to a service manager's notification
// socket ($NOTIFY_SOCKET, sd_notify(3)'s protocol): an absolute path, or an
// abstract name written with a leading '@'. Sent from this process itself,
// so systemd attributes it to the main PID (systemd-notify, a child that may
// exit before systemd reads its credentials, cannot promise that).
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "bpf_common.h"
#include "errors.h"

namespace krsi {

namespace {
Napi::Value Notify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsString()) {
    Napi::TypeError::New(env, "notify(socket: string, message: string)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string addr = info[0].As<Napi::String>().Utf8Value();
  std::string msg = info[1].As<Napi::String>().Utf8Value();
  if (addr.size() < 2 || (addr[0] != '/' && addr[0] != '@')) {
    ThrowError(env, EINVAL, "notify: the socket must be an absolute path or an abstract name starting with @, not '" + addr + "'");
    return env.Undefined();
  }
  sockaddr_un sa;
  memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  if (addr.size() >= sizeof(sa.sun_path)) {
    ThrowError(env, ENAMETOOLONG, "notify: socket name too long: " + addr);
    return env.Undefined();
  }
  memcpy(sa.sun_path, addr.data(), addr.size());
  // an abstract name's length is exact: a trailing NUL would be part of the name
  if (addr[0] == '@') sa.sun_path[0] = '\0';
  socklen_t len = offsetof(sockaddr_un, sun_path) + addr.size() + (addr[0] == '/' ? 1 : 0);

  UniqueFd fd(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    int err = errno;
    ThrowError(env, err, std::string("notify: socket: ") + strerror(err));
    return env.Undefined();
  }
  // MSG_DONTWAIT: a service manager that stopped reading must not stall the daemon
  if (sendto(fd.get(), msg.data(), msg.size(), MSG_NOSIGNAL | MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&sa), len) < 0) {
    int err = errno;
    ThrowError(env, err, "notify: send to " + addr + ": " + strerror(err));
    return env.Undefined();
  }
  return env.Undefined();
}
}  // namespace

void InitNotify(Napi::Env env, Napi::Object exports) {
  exports.Set("notify", Napi::Function::New(env, Notify, "notify"));
}

}  // namespace krsi
