// reply(errnoOrZero, data?): the one way JS answers a FUSE request. Each
// request is answered exactly once; a second reply, or one after the session
// went away (it answered EIO then), is dropped and returns false.
#include <sys/stat.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "fuse_session.h"

namespace krsi::fuse {

namespace {

// Detach the request from its session; the caller then owns the answer.
// Null if already answered. May free `r`'s session-side reference.
fuse_req_t Take(Request* r) {
  if (r->answered()) return nullptr;
  fuse_req_t req = r->req;
  Session* s = r->session;
  r->session = nullptr;
  r->req = nullptr;
  s->Forget(r);
  return req;
}

double Num(Napi::Object o, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : fallback;
}

timespec Time(double ms) {
  timespec ts{};
  if (!std::isfinite(ms)) return ts;
  double sec = std::floor(ms / 1000);
  ts.tv_sec = static_cast<time_t>(sec);
  ts.tv_nsec = static_cast<long>((ms - sec * 1000) * 1e6);
  return ts;
}

// { ino, mode, nlink?, uid, gid, size, atimeMs, mtimeMs, ctimeMs }
bool ToStat(Napi::Value v, struct stat* st, std::string* bad) {
  if (!v.IsObject()) {
    *bad = "attr must be an object";
    return false;
  }
  Napi::Object o = v.As<Napi::Object>();
  memset(st, 0, sizeof *st);
  st->st_ino = static_cast<ino_t>(Num(o, "ino", 0));
  st->st_mode = static_cast<mode_t>(Num(o, "mode", 0));
  if (st->st_ino == 0 || (st->st_mode & S_IFMT) == 0) {
    *bad = "attr needs ino and mode (with its S_IFMT type bits)";
    return false;
  }
  st->st_nlink = static_cast<nlink_t>(Num(o, "nlink", S_ISDIR(st->st_mode) ? 2 : 1));
  st->st_uid = static_cast<uid_t>(Num(o, "uid", 0));
  st->st_gid = static_cast<gid_t>(Num(o, "gid", 0));
  st->st_size = static_cast<off_t>(Num(o, "size", 0));
  st->st_blksize = 4096;
  st->st_blocks = (st->st_size + 511) / 512;
  st->st_atim = Time(Num(o, "atimeMs", 0));
  st->st_mtim = Time(Num(o, "mtimeMs", 0));
  st->st_ctim = Time(Num(o, "ctimeMs", 0));
  return true;
}

// Attributes are asked for again at every use (a permission check, a stat)
// unless JS says they change only when it says so ({ fixed: true }): then the
// session and the kernel keep them (Session::KeepAttr; the root's for a
// second). The names are fixed too (entry_timeout).
constexpr double kFixedTimeout = 3600.0;
double AttrTimeout(Request* r, Napi::Value attr, const struct stat& st) {
  if (!attr.IsObject() || !attr.As<Napi::Object>().Get("fixed").ToBoolean().Value()) return 0.0;
  if (r->session != nullptr) r->session->KeepAttr(st);
  return Session::KeptFor(st.st_ino);
}

bool ToBytes(Napi::Value v, const char** data, size_t* len, std::string* holder) {
  if (v.IsBuffer()) {
    auto b = v.As<Napi::Buffer<char>>();
    *data = b.Data();
    *len = b.Length();
  } else if (v.IsTypedArray()) {
    auto a = v.As<Napi::TypedArray>();
    *data = static_cast<const char*>(a.ArrayBuffer().Data()) + a.ByteOffset();
    *len = a.ByteLength();
  } else if (v.IsString()) {
    *holder = v.As<Napi::String>().Utf8Value();
    *data = holder->data();
    *len = holder->size();
  } else if (v.IsUndefined() || v.IsNull()) {
    *data = "";
    *len = 0;
  } else {
    return false;
  }
  return true;
}

// Send the success answer of `r` built from `data`. Returns "" or what is
// wrong with `data` (then nothing was sent).
std::string Answer(Request* r, Napi::Value data) {
  std::string bad;
  switch (r->kind) {
    case ReplyKind::kErrOnly: {
      fuse_reply_err(Take(r), 0);
      return "";
    }
    case ReplyKind::kAttr: {
      struct stat st;
      if (!ToStat(data, &st, &bad)) return bad;
      double timeout = AttrTimeout(r, data, st);
      fuse_reply_attr(Take(r), &st, timeout);
      return "";
    }
    case ReplyKind::kEntry: {
      // { ino, attr } or the attr itself (its ino)
      Napi::Value attr = data.IsObject() && data.As<Napi::Object>().Has("attr") ? data.As<Napi::Object>().Get("attr") : data;
      fuse_entry_param e{};
      if (!ToStat(attr, &e.attr, &bad)) return bad;
      e.ino = e.attr.st_ino;
      if (data.IsObject()) e.ino = static_cast<fuse_ino_t>(Num(data.As<Napi::Object>(), "ino", e.ino));
      e.attr.st_ino = e.ino;
      e.generation = 0;
      e.attr_timeout = AttrTimeout(r, attr, e.attr);
      // The directory's names are fixed for the mount's life (the catalogue
      // resolved at start): no LOOKUP round trip on every open of a file.
      e.entry_timeout = kFixedTimeout;
      fuse_reply_entry(Take(r), &e);
      return "";
    }
    case ReplyKind::kOpen: {
      // the fh, or { fh, cache: true } for a file whose content never changes
      // while mounted and whose getattr size is exact: page cache, no direct
      // I/O; or { fh, snapshot } for an open whose text JS took now: reads
      // are served from it (fuse_ops.cc Read)
      Napi::Value fhv = data;
      bool cache = false;
      Napi::Value snapshot;
      if (data.IsObject()) {
        Napi::Object o = data.As<Napi::Object>();
        fhv = o.Get("fh");
        cache = o.Get("cache").ToBoolean().Value();
        snapshot = o.Get("snapshot");
      }
      const char* text = nullptr;
      size_t textLen = 0;
      std::string holder;
      bool hasSnapshot = !snapshot.IsEmpty() && !snapshot.IsUndefined();
      if (hasSnapshot && (cache || !ToBytes(snapshot, &text, &textLen, &holder))) {
        return "open: the snapshot must be a Buffer, a Uint8Array or a string, and not with cache";
      }
      if (!fhv.IsUndefined() && !fhv.IsNull() && !fhv.IsNumber()) return "open: the file handle must be a number";
      double fh = fhv.IsNumber() ? fhv.As<Napi::Number>().DoubleValue() : 0;
      if (fh < 0 || !std::isfinite(fh)) return "open: the file handle must be a non-negative integer";
      r->fi.fh = static_cast<uint64_t>(fh);
      if (cache) {
        r->fi.direct_io = 0;
        r->fi.keep_cache = 1;
        if (r->session != nullptr) r->session->MarkCached(r->ino);
      }
      if (hasSnapshot && r->session != nullptr) r->session->KeepSnapshot(r->fi.fh, std::string(text, textLen));
      fuse_file_info fi = r->fi;
      fuse_reply_open(Take(r), &fi);
      return "";
    }
    case ReplyKind::kBuf: {
      const char* bytes;
      size_t len;
      std::string holder;
      if (!ToBytes(data, &bytes, &len, &holder)) return "read: the data must be a Buffer, a Uint8Array or a string";
      size_t n = len < r->size ? len : r->size;
      // the whole text again (a read at offset 0): what the reads after it get
      Session::Snapshot* snap = r->snapshot && r->session != nullptr ? r->session->snapshot(r->fi.fh) : nullptr;
      if (snap != nullptr) {
        snap->bytes.assign(bytes, len);
        snap->fresh = false;
      }
      fuse_reply_buf(Take(r), bytes, n);
      return "";
    }
    case ReplyKind::kWrite: {
      if (!data.IsNumber()) return "write: the count must be a number";
      double n = data.As<Napi::Number>().DoubleValue();
      if (!(n >= 0 && n <= static_cast<double>(r->size))) return "write: the count must be between 0 and the size written";
      fuse_reply_write(Take(r), static_cast<size_t>(n));
      return "";
    }
    case ReplyKind::kPoll: {
      // revents: POLLIN, POLLOUT... as poll(2) spells them (the kernel's values)
      if (!data.IsNumber()) return "poll: the events must be a number";
      double ev = data.As<Napi::Number>().DoubleValue();
      if (!(ev >= 0 && ev <= 0xffffffff) || ev != std::floor(ev)) return "poll: the events must be a 32-bit mask";
      fuse_reply_poll(Take(r), static_cast<unsigned>(ev));
      return "";
    }
    case ReplyKind::kDirents: {
      // [{ name, ino, mode? }], all of them: the kernel's offset is an index.
      if (!data.IsArray()) return "readdir: the entries must be an array";
      Napi::Array entries = data.As<Napi::Array>();
      std::vector<char> buf(r->size);
      size_t pos = 0;
      for (uint32_t i = static_cast<uint32_t>(r->offset); i < entries.Length(); i++) {
        Napi::Value ev = entries.Get(i);
        if (!ev.IsObject()) return "readdir: each entry must be { name, ino, mode? }";
        Napi::Object e = ev.As<Napi::Object>();
        Napi::Value nv = e.Get("name");
        if (!nv.IsString()) return "readdir: each entry needs a name";
        std::string name = nv.As<Napi::String>().Utf8Value();
        struct stat st{};
        st.st_ino = static_cast<ino_t>(Num(e, "ino", 0));
        st.st_mode = static_cast<mode_t>(Num(e, "mode", 0));  // only the type bits are used
        size_t need = fuse_add_direntry(r->req, nullptr, 0, name.c_str(), nullptr, 0);
        if (pos + need > buf.size()) break;
        fuse_add_direntry(r->req, buf.data() + pos, buf.size() - pos, name.c_str(), &st, i + 1);
        pos += need;
      }
      fuse_reply_buf(Take(r), buf.data(), pos);
      return "";
    }
  }
  return "unknown reply kind";
}

}  // namespace

void ReplyError(Request* r, int err) {
  fuse_req_t req = Take(r);
  if (req != nullptr) fuse_reply_err(req, err);
}

Napi::Object CallerOf(Napi::Env env, fuse_req_t req) {
  const fuse_ctx* c = fuse_req_ctx(req);
  Napi::Object o = Napi::Object::New(env);
  o.Set("pid", Napi::Number::New(env, c->pid));
  o.Set("uid", Napi::Number::New(env, c->uid));
  o.Set("gid", Napi::Number::New(env, c->gid));
  return o;
}

Napi::Function MakeReply(Napi::Env env, const std::shared_ptr<Request>& request) {
  return Napi::Function::New(
      env,
      [request](const Napi::CallbackInfo& info) -> Napi::Value {
        Napi::Env env = info.Env();
        Request* r = request.get();
        if (r->answered()) return Napi::Boolean::New(env, false);
        Napi::Value first = info.Length() > 0 ? info[0] : env.Undefined();
        std::string bad;
        if (first.IsNumber()) {
          double e = std::fabs(first.As<Napi::Number>().DoubleValue());
          if (e != 0) {
            ReplyError(r, e < 4096 ? static_cast<int>(e) : EIO);
            return Napi::Boolean::New(env, true);
          }
          bad = Answer(r, info.Length() > 1 ? info[1] : env.Undefined());
        } else {
          bad = "the first argument must be 0 or an errno";
        }
        if (bad.empty()) return Napi::Boolean::New(env, true);
        // A bug in the caller: the kernel still gets an answer, the caller an exception.
        ReplyError(r, EIO);
        Napi::TypeError::New(env, "fuse reply: " + bad).ThrowAsJavaScriptException();
        return env.Undefined();
      },
      "reply");
}

}  // namespace krsi::fuse
