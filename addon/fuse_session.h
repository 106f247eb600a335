// One FUSE mount served from the Node event loop: libfuse3's low-level API,
// no libfuse threads. The session fd is non-blocking and watched by a
// uv_poll_t on the JS loop; each readable event drains the fd with
// fuse_session_receive_buf / fuse_session_process_buf, so every ll op
// callback runs on the JS thread and hands the request to JS, which answers
// whenever it likes (many requests in flight at once).
#pragma once

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 34
#endif
#include <fuse3/fuse_lowlevel.h>
#include <napi.h>
#include <uv.h>

#include "uv_poller.h"

#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace krsi::fuse {

using krsi::UvPoller;

class Session;

// What a reply must carry, fixed by the op that created the request.
enum class ReplyKind { kErrOnly, kEntry, kAttr, kOpen, kBuf, kWrite, kDirents, kPoll };

// One request the kernel waits on. Shared by the session's pending set and the
// JS reply function; answered exactly once (by JS, or by the session with EIO
// when it goes away), after which `req` is gone and must not be touched.
struct Request {
  fuse_req_t req = nullptr;
  Session* session = nullptr;  // null once answered
  ReplyKind kind = ReplyKind::kErrOnly;
  fuse_file_info fi{};          // copy: libfuse's is on its stack
  fuse_ino_t ino = 0;           // open: the file being opened
  size_t size = 0;              // read/readdir: the most the kernel takes
  // read at offset 0 of an open JS gave a snapshot: the answer is the whole
  // text, which replaces the snapshot (fuse_reply.cc)
  bool snapshot = false;
  off_t offset = 0;             // readdir: index of the first entry wanted
  // read, write, flush, setattr: the object JS got; its onInterrupt, if JS
  // set one, is called on FUSE_INTERRUPT (fuse_ops.cc Interrupted).
  Napi::ObjectReference js;

  bool answered() const { return session == nullptr; }
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Napi::Env env, std::string mountpoint, Napi::Function dispatch, Napi::Function onUnmounted);
  ~Session();

  // Mount: returns 0 or a positive errno with `message` set.
  int Mount(const std::vector<std::string>& options, std::string* message);
  // Stop serving, answer what is pending with EIO, unmount (lazily), free.
  // Idempotent. `lost`: the kernel side went away first (umount -l, abort).
  void Close(bool lost, bool notify);
  bool mounted() const { return se_ != nullptr; }
  // Files JS opened for the page cache (static content, exact size): reads
  // without a lock owner (the page cache's) are theirs, not splice's.
  void MarkCached(fuse_ino_t ino) { cached_.insert(ino); }
  bool cached(fuse_ino_t ino) const { return cached_.count(ino) != 0; }
  // Read-only opens whose text JS took at open ({ fh, snapshot }): the bytes
  // reads are served from, and whether the read at offset 0 that follows the
  // open is still to come (it gets them; a later one asks JS again).
  struct Snapshot {
    std::string bytes;
    bool fresh = true;
  };
  Snapshot* snapshot(uint64_t fh) {
    auto it = snapshots_.find(fh);
    return it == snapshots_.end() ? nullptr : &it->second;
  }
  void KeepSnapshot(uint64_t fh, std::string bytes) { snapshots_[fh] = Snapshot{std::move(bytes), true}; }
  // False when fh had none.
  bool DropSnapshot(uint64_t fh) { return snapshots_.erase(fh) != 0; }
  // Attributes JS said are fixed ({ fixed: true }): GETATTR is answered from
  // them, without JS, until JS says they changed (Invalidate). The kernel
  // keeps them too: the root's for a second only, because kept attributes
  // are served even once the daemon is gone, and a stat of a dead mount must
  // say ENOTCONN soon (StatLive does at once). A second is enough for the
  // root's GETATTR (which default_permissions sends before every path walk
  // through it) to be skipped by a reader that opens file after file.
  static double KeptFor(fuse_ino_t ino) { return ino == FUSE_ROOT_ID ? 1.0 : 3600.0; }
  void KeepAttr(const struct stat& st) { fixedAttrs_[st.st_ino] = st; }
  const struct stat* fixedAttr(fuse_ino_t ino) const {
    auto it = fixedAttrs_.find(ino);
    return it == fixedAttrs_.end() ? nullptr : &it->second;
  }
  // JS changed the attributes of ino: forget them here and in the kernel.
  void Invalidate(fuse_ino_t ino);
  const std::string& mountpoint() const { return mountpoint_; }

  // Used by the op callbacks (fuse_ops.cc), on the JS thread.
  Napi::Env env() const { return env_; }
  // Hand a request to JS: dispatch(op, obj, reply). Answers EIO if it throws.
  void Dispatch(const char* op, const std::shared_ptr<Request>& r, Napi::Object obj);
  // The request is being answered: drop the session's hold on it.
  void Forget(Request* r) { pending_.erase(r); }
  // fuse_lowlevel_notify_poll(ph) while the session lives; -ENOTCONN after.
  int NotifyPoll(fuse_pollhandle* ph);

 private:
  static void OnPoll(uv_poll_t* handle, int status, int events);
  void Drain();
  // Close's work; `notify` calls onUnmounted. The caller keeps the session alive.
  void Teardown(bool lost, bool notify);

  Napi::Env env_;
  std::string mountpoint_;
  Napi::FunctionReference dispatch_;
  Napi::FunctionReference onUnmounted_;
  std::unique_ptr<Napi::AsyncContext> async_;
  fuse_session* se_ = nullptr;
  fuse_buf buf_{};
  UvPoller poll_;
  bool draining_ = false;
  bool closeRequested_ = false;
  std::shared_ptr<Session> self_;  // keeps a live mount alive without a JS handle
  std::unordered_map<Request*, std::shared_ptr<Request>> pending_;
  std::unordered_set<fuse_ino_t> cached_;
  std::unordered_map<uint64_t, Snapshot> snapshots_;
  std::unordered_map<fuse_ino_t, struct stat> fixedAttrs_;
};

// A poll handle (what the kernel gave with a FUSE_POLL asking to be told
// when the file becomes ready), owned: freed with fuse_pollhandle_destroy
// whatever happens to it.
struct PollHandleFree {
  void operator()(fuse_pollhandle* ph) const { fuse_pollhandle_destroy(ph); }
};
using PollHandle = std::unique_ptr<fuse_pollhandle, PollHandleFree>;

// One poll handle, handed to JS as { notify(), drop() }. notify() wakes the
// kernel's pollers of that open file (fuse_lowlevel_notify_poll) once, then
// frees the handle; drop() frees it unused. Both are no-ops after either, and
// notify() is one once the session is gone (the handle points into it). The
// handle is also freed when JS lets go of the object (garbage collection).
class PollWaker {
 public:
  PollWaker(std::weak_ptr<Session> session, PollHandle ph) : session_(std::move(session)), ph_(std::move(ph)) {}
  bool Notify();
  void Drop() { ph_.reset(); }
  Napi::Object ToJs(Napi::Env env, const std::shared_ptr<PollWaker>& self);

 private:
  std::weak_ptr<Session> session_;
  PollHandle ph_;
};

// stat(2) of `path`, and statfs(2) too, which a FUSE mount always asks of its
// daemon: a dead mount's kept root attributes satisfy stat(2) for a second
// (Session::KeptFor), statfs(2) says ENOTCONN. Returns 0 or the errno.
int StatLive(const std::string& path, struct stat* st);

// fuse_ops.cc: the ll op table; userdata is the Session.
const fuse_lowlevel_ops& LowLevelOps();

// fuse_reply.cc
// reply(errnoOrZero, data?) for JS; answers once, later calls are dropped.
Napi::Function MakeReply(Napi::Env env, const std::shared_ptr<Request>& r);
// Answer with an errno (0 allowed for kErrOnly). No-op if already answered.
void ReplyError(Request* r, int err);
// The caller of a request, as { pid, uid, gid }.
Napi::Object CallerOf(Napi::Env env, fuse_req_t req);

// fuse_log.cc: libfuse's messages, captured during mount for error text.
void StartLogCapture();
std::string StopLogCapture();

}  // namespace krsi::fuse
