// The events ring: one BPF_MAP_TYPE_RINGBUF for all of krsifs, pinned in
// bpffs so it outlives the daemon like the pinned links, plus a one-slot
// array counting records the full ring refused (bpf/krsi_events.h).
//   eventsOpen(ringPath, lostPath, sizeBytes, statsPath, reportedPath) -> { created }
// plus the counters every behaviour's denials go to (krsi_stats) and the
// marks by which the observer knows a policy reported a denial itself
// (krsi_reported): bpf/krsi_verdict.h.
//   new EventReader(ringPath, lostPath, onBatch(records: Buffer[], lost, realtimeMinusBoottimeNs))
// The reader watches ring_buffer__epoll_fd() with a uv_poll on the JS loop and
// drains with ring_buffer__consume (never blocks): no thread, no lock. It
// starts by dropping what the ring holds: the daemon makes one only while
// someone reads `events`, and what came before is not that reader's. `lost`
// is the count the kernel refused since the previous batch (or the start).
// libbpf maps the ring's data twice (8 MiB of RSS for 4 MiB): that is why the
// daemon keeps a reader only while it has one of its own.
#include <errno.h>
#include <time.h>
#include <uv.h>

#include "bpf_common.h"
#include "uv_poller.h"

namespace krsi {

namespace {

struct RingBufferFreer {
  void operator()(ring_buffer* r) const { ring_buffer__free(r); }
};
using RingBufferPtr = std::unique_ptr<ring_buffer, RingBufferFreer>;

// The pinned map at path, or a new one pinned there. 0 or a positive errno.
int OpenOrCreate(const std::string& path, bpf_map_type type, const char* name, uint32_t keySize, uint32_t valueSize,
                 uint32_t maxEntries, UniqueFd* out, bool* created, std::string* what) {
  UniqueFd fd(bpf_obj_get(path.c_str()));
  if (fd.valid()) {
    bpf_map_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0) {
      *what = "read info of " + path;
      return errno;
    }
    if (info.type != static_cast<uint32_t>(type)) {
      *what = path + " is pinned but is not a " + libbpf_bpf_map_type_str(type) + " map";
      return EEXIST;
    }
    // an older or foreign map of the right type but another shape would make
    // every object that reuses it fail to load: refuse it here, once, clearly
    if (type != BPF_MAP_TYPE_RINGBUF && (info.key_size != keySize || info.value_size != valueSize)) {
      *what = path + " is pinned with key/value sizes " + std::to_string(info.key_size) + "/" +
              std::to_string(info.value_size) + ", not " + std::to_string(keySize) + "/" + std::to_string(valueSize) +
              " (remove it: rm " + path + ")";
      return EEXIST;
    }
    *out = std::move(fd);
    return 0;
  }
  if (errno != ENOENT) {
    *what = "open " + path;
    return errno;
  }
  LIBBPF_OPTS(bpf_map_create_opts, opts);
  fd.reset(bpf_map_create(type, name, keySize, valueSize, maxEntries, &opts));
  if (!fd.valid()) {
    *what = std::string("create ") + name + " map";
    return errno;
  }
  if (bpf_obj_pin(fd.get(), path.c_str()) != 0) {
    *what = "pin " + path;
    return errno;
  }
  *created = true;
  *out = std::move(fd);
  return 0;
}

Napi::Value EventsOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 5 || !info[0].IsString() || !info[1].IsString() || !info[2].IsNumber() || !info[3].IsString() ||
      !info[4].IsString()) {
    Napi::TypeError::New(env, "eventsOpen(ringPath, lostPath, sizeBytes, statsPath, reportedPath)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string ring = info[0].As<Napi::String>().Utf8Value();
  std::string lost = info[1].As<Napi::String>().Utf8Value();
  uint32_t size = info[2].As<Napi::Number>().Uint32Value();
  std::string stats = info[3].As<Napi::String>().Utf8Value();
  std::string reported = info[4].As<Napi::String>().Utf8Value();
  UniqueFd rfd, lfd, sfd, mfd;
  bool createdRing = false, createdLost = false, createdStats = false, createdMarks = false;
  std::string what;
  int err = OpenOrCreate(ring, BPF_MAP_TYPE_RINGBUF, "krsi_events", 0, 0, size, &rfd, &createdRing, &what);
  if (err == 0) err = OpenOrCreate(lost, BPF_MAP_TYPE_ARRAY, "krsi_lost", 4, 8, 1, &lfd, &createdLost, &what);
  // sizes and entries as declared in bpf/krsi_verdict.h
  if (err == 0) err = OpenOrCreate(stats, BPF_MAP_TYPE_HASH, "krsi_stats", 8, 16, 256, &sfd, &createdStats, &what);
  if (err == 0)
    err = OpenOrCreate(reported, BPF_MAP_TYPE_LRU_HASH, "krsi_reported", 8, 8, 4096, &mfd, &createdMarks, &what);
  if (err != 0) {
    ThrowError(env, err, "events ring: " + what + ": " + ErrText(err));
    return env.Undefined();
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("created", createdRing);
  return out;
}

class EventReader : public Napi::ObjectWrap<EventReader> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "EventReader", {InstanceMethod<&EventReader::Close>("close")});
  }

  explicit EventReader(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EventReader>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[0].IsString() || !info[1].IsString() || !info[2].IsFunction()) {
      Napi::TypeError::New(env, "new EventReader(ringPath, lostPath, onBatch)").ThrowAsJavaScriptException();
      return;
    }
    std::string ring = info[0].As<Napi::String>().Utf8Value();
    std::string lost = info[1].As<Napi::String>().Utf8Value();
    ringFd_.reset(bpf_obj_get(ring.c_str()));
    if (!ringFd_.valid()) {
      int err = errno;
      ThrowError(env, err, "events reader: open " + ring + ": " + ErrText(err));
      return;
    }
    lostFd_.reset(bpf_obj_get(lost.c_str()));
    if (!lostFd_.valid()) {
      int err = errno;
      ThrowError(env, err, "events reader: open " + lost + ": " + ErrText(err));
      return;
    }
    errno = 0;
    rb_.reset(ring_buffer__new(ringFd_.get(), OnSample, this, nullptr));
    if (!rb_) {
      int err = errno ? errno : EINVAL;
      ThrowError(env, err, "events reader: ring_buffer__new: " + ErrText(err));
      return;
    }
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok) {
      ThrowError(env, EIO, "events reader: no event loop");
      return;
    }
    discarding_ = true;
    ring_buffer__consume(rb_.get());
    discarding_ = false;
    uint32_t zero = 0;
    bpf_map_lookup_elem(lostFd_.get(), &zero, &lastLost_);
    int uerr = poll_.Start(loop, ring_buffer__epoll_fd(rb_.get()), this, OnPoll);
    if (uerr != 0) {
      ThrowError(env, -uerr, std::string("events reader: watch the ring: ") + uv_strerror(uerr));
      return;
    }
    onBatch_ = Napi::Persistent(info[2].As<Napi::Function>());
    async_ = std::make_unique<Napi::AsyncContext>(env, "krsifs:EventReader");
    Ref();  // alive while watching, even without a JS handle
  }


 private:
  static int OnSample(void* ctx, void* data, size_t size) {
    auto* self = static_cast<EventReader*>(ctx);
    if (self->discarding_) return 0;
    const auto* p = static_cast<const uint8_t*>(data);
    self->batch_.emplace_back(p, p + size);
    return 0;
  }

  static void OnPoll(uv_poll_t* handle, int status, int) {
    auto* self = static_cast<EventReader*>(handle->data);
    if (self == nullptr || !self->rb_) return;
    Napi::Env env = self->Env();
    Napi::HandleScope scope(env);
    Napi::CallbackScope callbacks(env, *self->async_);
    // Consume everything there is now; the kernel wakes us again only once we
    // have caught up, so a partial drain could stall the stream.
    ring_buffer__consume(self->rb_.get());
    uint32_t zero = 0;
    uint64_t lost = 0;
    bpf_map_lookup_elem(self->lostFd_.get(), &zero, &lost);
    timespec rt{}, bt{};
    clock_gettime(CLOCK_REALTIME, &rt);
    clock_gettime(CLOCK_BOOTTIME, &bt);
    double offset = (double(rt.tv_sec) - double(bt.tv_sec)) * 1e9 + (double(rt.tv_nsec) - double(bt.tv_nsec));
    std::vector<std::vector<uint8_t>> batch = std::move(self->batch_);
    self->batch_.clear();
    if (batch.empty() && lost == self->lastLost_) return;
    uint64_t missed = lost > self->lastLost_ ? lost - self->lastLost_ : 0;
    self->lastLost_ = lost;
    Napi::Array records = Napi::Array::New(env, batch.size());
    for (size_t i = 0; i < batch.size(); i++) {
      records.Set(i, Napi::Buffer<uint8_t>::Copy(env, batch[i].data(), batch[i].size()));
    }
    self->onBatch_.Call({records, Napi::Number::New(env, double(missed)), Napi::Number::New(env, offset)});
    if (env.IsExceptionPending()) {
      Napi::Error e = env.GetAndClearPendingException();
      fprintf(stderr, "krsifs: events reader: onBatch threw: %s\n", e.Message().c_str());
    }
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (poll_.active()) {
      poll_.Stop();
      rb_.reset();
      Unref();
    }
    return info.Env().Undefined();
  }


  UniqueFd ringFd_;
  UniqueFd lostFd_;
  RingBufferPtr rb_;  // after the fds it uses: destroyed first
  UvPoller poll_;  // after rb_: stopped before the ring it watches is freed
  Napi::FunctionReference onBatch_;
  std::unique_ptr<Napi::AsyncContext> async_;
  std::vector<std::vector<uint8_t>> batch_;
  uint64_t lastLost_ = 0;
  bool discarding_ = false;
};

}  // namespace

void InitEvents(Napi::Env env, Napi::Object exports) {
  exports.Set("eventsOpen", Napi::Function::New(env, EventsOpen, "eventsOpen"));
  exports.Set("EventReader", EventReader::Define(env));
}

}  // namespace krsi
