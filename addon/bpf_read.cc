// readObject(pid, path): the bytes of a BPF object, read once, from the path
// as process `pid` sees it. Everything after (inspect, load) works on these
// bytes, so what is inspected is what is loaded.
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bpf_common.h"

namespace krsi {

namespace {
constexpr size_t kMaxObject = 64u << 20;

int OpenAt2(int dirfd, const char* path, int flags, uint64_t resolve) {
  struct open_how how = {};
  how.flags = flags;
  how.resolve = resolve;
  return static_cast<int>(syscall(SYS_openat2, dirfd, path, &how, sizeof(how)));
}

std::string ReadLink(const std::string& path) {
  char buf[4096];
  ssize_t n = readlink(path.c_str(), buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, n) : std::string();
}

class ReadObjectWorker : public PromiseWorker {
 public:
  ReadObjectWorker(Napi::Env env, int pid, std::string path)
      : PromiseWorker(env, "krsifs:ReadObjectWorker"), pid_(pid), path_(std::move(path)) {}

 protected:
  void Run() override {
    std::string what = "read object " + path_;
    if (path_.empty() || path_.find('\0') != std::string::npos) {
      failure_.set(ENOENT, what + ": empty path");
      return;
    }
    int pid = pid_ == 0 ? getpid() : pid_;
    std::string proc = "/proc/" + std::to_string(pid);
    UniqueFd root(open((proc + "/root").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root.valid()) {
      int e = errno;
      failure_.set(e == ENOENT ? ESRCH : e, what + ": cannot see process " + std::to_string(pid) +
                                                ": " + ErrText(e == ENOENT ? ESRCH : e));
      return;
    }
    // The path is resolved as the process would: absolute ones inside its
    // root; relative ones from its cwd, and for a chrooted process still
    // inside its root (".." must not climb out of a chroot through us).
    // The directory fds are the process's own (magic links).
    UniqueFd cwd;
    int dirfd = root.get();
    std::string target = path_;
    uint64_t resolve = RESOLVE_IN_ROOT;
    if (path_[0] != '/') {
      std::string rootAt = ReadLink(proc + "/root");
      if (rootAt == "/") {
        cwd.reset(open((proc + "/cwd").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
        if (!cwd.valid()) {
          failure_.set(errno, what + ": cannot see the cwd of process " + std::to_string(pid) + ": " + ErrText(errno));
          return;
        }
        dirfd = cwd.get();
        resolve = 0;
      } else {
        std::string cwdAt = ReadLink(proc + "/cwd");
        if (cwdAt.compare(0, rootAt.size(), rootAt) != 0 || (cwdAt.size() > rootAt.size() && cwdAt[rootAt.size()] != '/')) {
          failure_.set(EXDEV, what + ": the writer's cwd (" + cwdAt + ") is outside its root (" + rootAt +
                                  "); use an absolute path");
          return;
        }
        target = cwdAt.substr(rootAt.size()) + "/" + path_;
      }
    }
    // O_PATH first: opening a fifo for reading would block, a device could react.
    int flags = O_PATH | O_CLOEXEC;
    int fd = OpenAt2(dirfd, target.c_str(), flags, resolve);
    if (fd < 0 && errno == ENOSYS) {
      // kernels before 5.6 (which have no BPF LSM anyway): plain openat;
      // absolute symlinks then resolve against our root, not the process's
      fd = openat(dirfd, resolve ? target.c_str() + target.find_first_not_of('/') : target.c_str(), flags);
    }
    if (fd < 0) {
      int e = errno;
      // RESOLVE_IN_ROOT refuses /proc magic links (/proc/PID/fd/N, /proc/self/...:
      // "self" would be this daemon, not the writer) and escapes from the root
      failure_.set(e, what + ": " + ErrText(e) +
                          (e == EXDEV ? " (the path goes through a /proc magic link or leaves the writer's root; "
                                        "name the object file itself)"
                                      : ""));
      return;
    }
    UniqueFd pathFd(fd);
    struct stat st;
    if (fstat(pathFd.get(), &st) != 0) {
      failure_.set(errno, what + ": " + ErrText(errno));
      return;
    }
    if (S_ISDIR(st.st_mode)) {
      failure_.set(EISDIR, what + ": is a directory");
      return;
    }
    if (!S_ISREG(st.st_mode)) {
      failure_.set(ENOEXEC, what + ": not a regular file");
      return;
    }
    if (static_cast<uint64_t>(st.st_size) > kMaxObject) {
      failure_.set(E2BIG, what + ": " + std::to_string(st.st_size) + " bytes, more than the 64 MiB limit");
      return;
    }
    std::string self = "/proc/self/fd/" + std::to_string(pathFd.get());
    char seen[4096];
    ssize_t n = readlink(self.c_str(), seen, sizeof(seen) - 1);
    seenPath_ = n > 0 ? std::string(seen, n) : path_;
    // Reopen for reading through the O_PATH fd: same inode, permission checked now.
    // O_NONBLOCK: a regular file can still be a stream that waits for data
    // (tracefs's trace_pipe, /proc/kmsg, krsifs's own events file, read here
    // by the daemon that must answer it); none of those is an object, and
    // waiting on one would hold this write, and this file's queue, for ever.
    UniqueFd file(open(self.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    if (!file.valid()) {
      failure_.set(errno, what + ": " + ErrText(errno));
      return;
    }
    // Read to EOF, not to st_size: a FUSE or proc file may lie about its size.
    data_.reserve(static_cast<size_t>(st.st_size));
    std::vector<uint8_t> chunk(1 << 16);
    for (;;) {
      ssize_t r = read(file.get(), chunk.data(), chunk.size());
      if (r < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) {
          failure_.set(ENOEXEC, what + ": a stream with nothing to read now (like trace_pipe or krsifs's events), "
                                       "not a BPF object");
          return;
        }
        failure_.set(errno, what + ": " + ErrText(errno));
        return;
      }
      if (r == 0) break;
      if (data_.size() + r > kMaxObject) {
        failure_.set(E2BIG, what + ": more than the 64 MiB limit");
        return;
      }
      data_.insert(data_.end(), chunk.data(), chunk.data() + r);
    }
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("data", Napi::Buffer<uint8_t>::Copy(env, data_.data(), data_.size()));
    o.Set("path", Napi::String::New(env, seenPath_));
    return o;
  }

 private:
  int pid_;
  std::string path_;
  std::string seenPath_;
  std::vector<uint8_t> data_;
};

Napi::Value ReadObject(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsString()) {
    Napi::TypeError::New(env, "readObject(pid: number, path: string)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int64_t pid = info[0].As<Napi::Number>().Int64Value();
  if (pid < 0 || pid > INT32_MAX) {
    Napi::TypeError::New(env, "readObject: pid out of range").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto* w = new ReadObjectWorker(env, static_cast<int>(pid), info[1].As<Napi::String>().Utf8Value());
  return w->Queue();
}
}  // namespace

void InitRead(Napi::Env env, Napi::Object exports) {
  exports.Set("readObject", Napi::Function::New(env, ReadObject, "readObject"));
}

}  // namespace krsi
