// The libfuse low-level ops: each one runs on the JS thread (inside
// Session::Drain), turns its arguments into a plain object and dispatches it
// to JS with a reply function. Ops JS has no say in are answered here.
#include <sys/statvfs.h>

#include <cerrno>

#include "fuse_session.h"

namespace krsi::fuse {

namespace {

Session* SessionOf(fuse_req_t req) { return static_cast<Session*>(fuse_req_userdata(req)); }

std::shared_ptr<Request> NewRequest(fuse_req_t req, ReplyKind kind, const fuse_file_info* fi = nullptr) {
  auto r = std::make_shared<Request>();
  r->req = req;
  r->kind = kind;
  if (fi != nullptr) r->fi = *fi;
  return r;
}

// The object handed to JS; every op fills in what it has.
struct Args {
  Napi::Env env;
  Napi::HandleScope scope;
  Napi::Object obj;
  explicit Args(Session* s) : env(s->env()), scope(env), obj(Napi::Object::New(env)) {}
  Args& Set(const char* key, double v) {
    obj.Set(key, Napi::Number::New(env, v));
    return *this;
  }
  Args& Set(const char* key, const char* v) {
    obj.Set(key, Napi::String::New(env, v));
    return *this;
  }
};

// FUSE_INTERRUPT for a request still in JS: its caller got a signal. For a
// fatal one the kernel then waits, uninterruptibly, for our answer, and sends
// no second interrupt whatever comes later. Tell JS by calling the request
// object's onInterrupt, if it set one; JS still answers the request itself
// (a blocking read answers EINTR, an ordinary request may ignore it: the
// kernel takes a late answer as the answer).
void Interrupted(fuse_req_t, void* data) {
  auto* r = static_cast<Request*>(data);
  if (r->answered() || r->js.IsEmpty()) return;
  Napi::Env env = r->js.Env();
  Napi::HandleScope scope(env);
  Napi::Value fn = r->js.Value().Get("onInterrupt");
  if (fn.IsFunction()) fn.As<Napi::Function>().Call(r->js.Value(), {});
  if (env.IsExceptionPending()) env.GetAndClearPendingException();
}

// Dispatch a request whose caller may be interrupted (read, write, flush,
// setattr). Everything here runs on the loop thread, inside one
// fuse_session_process_buf, so no FUSE_INTERRUPT can be handled between
// Dispatch and fuse_req_interrupt_func: JS has set onInterrupt by then (it
// does so before its first await), and an interrupt libfuse already holds for
// this request (req->interrupted) makes fuse_req_interrupt_func call
// Interrupted at once. Once the request is answered libfuse forgets it, and a
// later FUSE_INTERRUPT for it finds nothing: `r` is never used after that.
void DispatchInterruptible(Session* s, const char* op, const std::shared_ptr<Request>& r, Napi::Object obj) {
  r->js = Napi::Persistent(obj);
  fuse_req_t req = r->req;
  s->Dispatch(op, r, obj);
  if (!r->answered()) fuse_req_interrupt_func(req, Interrupted, r.get());
}

void Init(void* userdata, fuse_conn_info* conn) {
  // Splice would hand us a pipe; requests are copied into JS values anyway.
  conn->want &= ~(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
  // libfuse3 turns atomic O_TRUNC on by default; off, the kernel sends
  // open() and then setattr(size 0), so `echo x > f` reaches JS as truncate
  // then write (as with libfuse2), and open never has to truncate.
  conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
  // One request at a time per write(2), in order: a command file must see
  // the bytes of a write in sequence. (Async reads stay on.)
  conn->want &= ~FUSE_CAP_ASYNC_DIO;
}

void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Session* s = SessionOf(req);
  Args a(s);
  a.Set("parent", parent).Set("name", name);
  s->Dispatch("lookup", NewRequest(req, ReplyKind::kEntry), a.obj);
}

// JS owns inode numbers and keeps them stable: nothing to forget.
void Forget(fuse_req_t req, fuse_ino_t, uint64_t) { fuse_reply_none(req); }
void ForgetMulti(fuse_req_t req, size_t, fuse_forget_data*) { fuse_reply_none(req); }

void Getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Session* s = SessionOf(req);
  if (const struct stat* st = s->fixedAttr(ino)) {
    fuse_reply_attr(req, st, Session::KeptFor(ino));
    return;
  }
  Args a(s);
  a.Set("ino", ino);
  if (fi != nullptr) a.Set("fh", fi->fh);
  s->Dispatch("getattr", NewRequest(req, ReplyKind::kAttr), a.obj);
}

void Setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi) {
  // Only the size may change (truncate, O_TRUNC); times are accepted and
  // ignored (touch works); owner and mode are fixed by the filesystem.
  if (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
    fuse_reply_err(req, EPERM);
    return;
  }
  Session* s = SessionOf(req);
  Args a(s);
  a.Set("ino", ino);
  if (fi != nullptr) a.Set("fh", fi->fh);
  if (to_set & FUSE_SET_ATTR_SIZE) a.Set("size", attr->st_size);
  DispatchInterruptible(s, "setattr", NewRequest(req, ReplyKind::kAttr), a.obj);
}

void Opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Session* s = SessionOf(req);
  Args a(s);
  a.Set("ino", ino).Set("flags", fi->flags);
  auto r = NewRequest(req, ReplyKind::kOpen, fi);
  r->fi.cache_readdir = 0;
  r->fi.keep_cache = 0;
  s->Dispatch("opendir", r, a.obj);
}

void Readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  Session* s = SessionOf(req);
  Args a(s);
  a.Set("ino", ino).Set("fh", fi->fh).Set("offset", off).Set("size", size);
  auto r = NewRequest(req, ReplyKind::kDirents, fi);
  r->size = size;
  r->offset = off;
  s->Dispatch("readdir", r, a.obj);
}

void Releasedir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Session* s = SessionOf(req);
  Args a(s);
  a.Set("ino", ino).Set("fh", fi->fh);
  s->Dispatch("releasedir", NewRequest(req, ReplyKind::kErrOnly), a.obj);
}

void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Session* s = SessionOf(req);
  Args a(s);
  a.Set("ino", ino).Set("flags", fi->flags);
  auto r = NewRequest(req, ReplyKind::kOpen, fi);
  r->ino = ino;
  // Direct I/O unless JS answers that the file is static (fuse_reply.cc):
  // sizes are nominal for dynamic files, and their reads must reach JS every
  // time (no page cache, no size-bounded read).
  r->fi.direct_io = 1;
  r->fi.keep_cache = 0;
  r->fi.nonseekable = 0;
  // A read-only open has nothing to run at close (lines are a writer's):
  // no FLUSH round trip on its close(2) (FOPEN_NOFLUSH, Linux 5.16).
  r->fi.noflush = (fi->flags & O_ACCMODE) == O_RDONLY;
  s->Dispatch("open", r, a.obj);
}

void Read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  // Every file is direct I/O (Open), so a read through the page cache comes
  // only from splice(2)/sendfile(2) (or mmap): since Linux 6.5 FUSE splices a
  // direct-I/O file from the page cache (filemap_splice_read), bounded by
  // i_size, instead of through read_iter. Data put there would be cut at the
  // size getattr gave and shared by every opener; refusing it makes
  // sendfile fail with EINVAL, and busybox cat, uutils cat, Go and Rust copy
  // loops then fall back to read(2), which comes here with the data. The
  // kernel marks its direct reads with the reader's lock owner
  // (FUSE_READ_LOCKOWNER, fuse_direct_io) and page-cache reads without one;
  // libfuse passes the owner on and leaves it 0 when the flag is absent.
  Session* s = SessionOf(req);
  if (fi->lock_owner == 0 && !s->cached(ino)) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  // An open whose text JS took at open: the read that follows the open and
  // every read past offset 0 (the rest of that text, the end of file) are
  // answered here, without a round trip through JS; only a later read at
  // offset 0 asks JS for the text again.
  Session::Snapshot* snap = s->snapshot(fi->fh);
  if (snap != nullptr && (off > 0 || snap->fresh)) {
    snap->fresh = false;
    size_t from = static_cast<size_t>(off) < snap->bytes.size() ? static_cast<size_t>(off) : snap->bytes.size();
    size_t n = snap->bytes.size() - from < size ? snap->bytes.size() - from : size;
    fuse_reply_buf(req, snap->bytes.data() + from, n);
    return;
  }
  Args a(s);
  a.Set("ino", ino).Set("fh", fi->fh).Set("size", size).Set("offset", off);
  auto r = NewRequest(req, ReplyKind::kBuf, fi);
  r->size = size;
  r->snapshot = snap != nullptr;
  DispatchInterruptible(s, "read", r, a.obj);
}

void Write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off, fuse_file_info* fi) {
  Session* s = SessionOf(req);
  Args a(s);
  a.Set("ino", ino).Set("fh", fi->fh).Set("offset", off);
  // A copy: libfuse reuses its receive buffer for the next request.
  a.obj.Set("data", Napi::Buffer<char>::Copy(a.env, buf, size));
  auto r = NewRequest(req, ReplyKind::kWrite, fi);
  r->size = size;
  DispatchInterruptible(s, "write", r, a.obj);
}

void Flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Session* s = SessionOf(req);
  Args a(s);
  a.Set("ino", ino).Set("fh", fi->fh);
  DispatchInterruptible(s, "flush", NewRequest(req, ReplyKind::kErrOnly), a.obj);
}

void Release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Session* s = SessionOf(req);
  // An open JS answered with a snapshot keeps nothing in JS (FsHandlers.open):
  // its last close is answered here, without a turn through JS.
  if (s->DropSnapshot(fi->fh)) {
    fuse_reply_err(req, 0);
    return;
  }
  Args a(s);
  a.Set("ino", ino).Set("fh", fi->fh).Set("flags", fi->flags);
  s->Dispatch("release", NewRequest(req, ReplyKind::kErrOnly), a.obj);
}

// poll(2), select(2), epoll(7) on an open file. The kernel gives a handle
// (ph) when a poller will sleep and wants to be told when the file becomes
// ready; JS gets it as `waker` ({ notify(), drop() }: see PollWaker) and
// answers the events ready now. Never answer ENOSYS here: the kernel would
// stop asking for the whole mount and report every file always ready.
void Poll(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, fuse_pollhandle* ph) {
  PollHandle handle(ph);  // owned from here: freed on every path
  Session* s = SessionOf(req);
  Args a(s);
  a.Set("ino", ino).Set("fh", fi->fh).Set("events", fi->poll_events);
  if (handle) {
    auto waker = std::make_shared<PollWaker>(s->weak_from_this(), std::move(handle));
    a.obj.Set("waker", waker->ToJs(a.env, waker));
  }
  s->Dispatch("poll", NewRequest(req, ReplyKind::kPoll, fi), a.obj);
}

void Statfs(fuse_req_t req, fuse_ino_t) {
  struct statvfs st{};
  st.f_bsize = 4096;
  st.f_frsize = 4096;
  st.f_namemax = 255;
  fuse_reply_statfs(req, &st);
}

// The namespace is fixed by the filesystem: refuse as securityfs does
// (a directory without create/mkdir/unlink: EACCES to create, EPERM else),
// instead of libfuse's ENOSYS "Function not implemented".
void Create(fuse_req_t req, fuse_ino_t, const char*, mode_t, fuse_file_info*) { fuse_reply_err(req, EACCES); }
void Mknod(fuse_req_t req, fuse_ino_t, const char*, mode_t, dev_t) { fuse_reply_err(req, EACCES); }
void Mkdir(fuse_req_t req, fuse_ino_t, const char*, mode_t) { fuse_reply_err(req, EPERM); }
void Unlink(fuse_req_t req, fuse_ino_t, const char*) { fuse_reply_err(req, EPERM); }
void Rmdir(fuse_req_t req, fuse_ino_t, const char*) { fuse_reply_err(req, EPERM); }
void Symlink(fuse_req_t req, const char*, fuse_ino_t, const char*) { fuse_reply_err(req, EPERM); }
void Link(fuse_req_t req, fuse_ino_t, fuse_ino_t, const char*) { fuse_reply_err(req, EPERM); }
void Rename(fuse_req_t req, fuse_ino_t, const char*, fuse_ino_t, const char*, unsigned int) {
  fuse_reply_err(req, EPERM);
}

fuse_lowlevel_ops MakeOps() {
  fuse_lowlevel_ops ops{};
  ops.init = Init;
  ops.lookup = Lookup;
  ops.forget = Forget;
  ops.forget_multi = ForgetMulti;
  ops.getattr = Getattr;
  ops.setattr = Setattr;
  ops.opendir = Opendir;
  ops.readdir = Readdir;
  ops.releasedir = Releasedir;
  ops.open = Open;
  ops.read = Read;
  ops.write = Write;
  ops.flush = Flush;
  ops.release = Release;
  ops.poll = Poll;
  ops.statfs = Statfs;
  ops.create = Create;
  ops.mknod = Mknod;
  ops.mkdir = Mkdir;
  ops.unlink = Unlink;
  ops.rmdir = Rmdir;
  ops.symlink = Symlink;
  ops.link = Link;
  ops.rename = Rename;
  return ops;
}

}  // namespace

const fuse_lowlevel_ops& LowLevelOps() {
  static const fuse_lowlevel_ops ops = MakeOps();
  return ops;
}

}  // namespace krsi::fuse
