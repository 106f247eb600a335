// One uv_poll_t watching an fd for reading on the JS loop, owned: Start
// creates and starts it, Stop (or the destructor) stops it and frees it once
// libuv has closed it. The FUSE session (/dev/fuse) and the events reader (the
// ring's epoll fd) both watch their fd this way.
#pragma once

#include <uv.h>

namespace krsi {

class UvPoller {
 public:
  UvPoller() = default;
  UvPoller(const UvPoller&) = delete;
  UvPoller& operator=(const UvPoller&) = delete;
  ~UvPoller() { Stop(); }

  // Watch `fd`; `cb` gets a handle whose `data` is `data` (null once stopped).
  // 0, or libuv's error (a negative errno): then nothing is watched.
  int Start(uv_loop_t* loop, int fd, void* data, uv_poll_cb cb) {
    Stop();
    auto* h = new uv_poll_t;
    int err = uv_poll_init(loop, h, fd);
    if (err != 0) {
      delete h;  // never initialised: nothing for libuv to close
      return err;
    }
    h->data = data;
    err = uv_poll_start(h, UV_READABLE, cb);
    if (err != 0) {
      Close(h);
      return err;
    }
    handle_ = h;
    return 0;
  }

  // Idempotent. A callback already queued sees data == nullptr.
  void Stop() {
    if (handle_ == nullptr) return;
    uv_poll_stop(handle_);
    handle_->data = nullptr;
    Close(handle_);
    handle_ = nullptr;
  }

  bool active() const { return handle_ != nullptr; }

 private:
  static void Close(uv_poll_t* h) {
    uv_close(reinterpret_cast<uv_handle_t*>(h), [](uv_handle_t* x) { delete reinterpret_cast<uv_poll_t*>(x); });
  }

  uv_poll_t* handle_ = nullptr;
};

}  // namespace krsi
