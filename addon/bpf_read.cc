// readObject(writer, path): the bytes of a BPF object, read once, as the
// writer would read them itself, and opened by libbpf on the same thread:
// one round trip gives the bytes, the object's facts and the opened object
// that loads (bpf_object.cc), so what is inspected is what is loaded.
//
// Each read runs on a thread of its own (OnOwnThread), not on libuv's pool:
// a path on a filesystem that does not answer (a stalled FUSE or NFS mount)
// then holds that one thread only, never the pool every other request uses.
// The JS side bounds the wait, the reads in flight, and drops a result
// nobody waits for any more.
//
// The thread takes the writer's view and rights for itself only, and exits:
//   unshare(CLONE_FS), then chroot to /proc/PID/root and chdir to
//   /proc/PID/cwd: absolute and relative paths, symlinks and ".." resolve
//   exactly as the writer's own would, in its mount namespace;
//   setgroups/setfsgid/setfsuid by raw syscall (glibc's wrappers change
//   every thread of the process) and capset on this thread: the effective
//   set becomes the writer's ∩ ours, so the open is checked with the
//   writer's file access rights (a writer with fsuid 0 but no
//   CAP_DAC_OVERRIDE cannot read other users' files through us);
//   openat2(RESOLVE_NO_MAGICLINKS), O_PATH: /proc/PID/fd/N, /dev/fd/N,
//   /proc/PID/root and the like are refused (EXDEV), and so is anything on
//   procfs (/proc/self there is the daemon), or on another kernel interface
//   filesystem (sysfs, bpffs, tracefs, …: ENOEXEC, never read);
//   then the file is reopened for reading (the permission check) and read.
// Nothing needs restoring: the thread's credentials and fs die with it.
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>

#include "bpf_object.h"

namespace krsi {

namespace {
constexpr size_t kMaxObject = 64u << 20;
constexpr size_t kMaxGroups = 65536;  // NGROUPS_MAX

#ifndef CONFIGFS_MAGIC
#define CONFIGFS_MAGIC 0x62656570
#endif
#ifndef FUSECTL_SUPER_MAGIC
#define FUSECTL_SUPER_MAGIC 0x65735543
#endif

// Kernel interface filesystems: their files are the kernel's (reading some
// of them acts: trace_pipe consumes, a pin's open fails), never an object.
const char* PseudoFs(unsigned long magic) {
  switch (magic) {
    case SYSFS_MAGIC: return "sysfs";
    case BPF_FS_MAGIC: return "bpffs";
    case TRACEFS_MAGIC: return "tracefs";
    case DEBUGFS_MAGIC: return "debugfs";
    case SECURITYFS_MAGIC: return "securityfs";
    case CGROUP_SUPER_MAGIC: return "cgroup";
    case CGROUP2_SUPER_MAGIC: return "cgroup2";
    case CONFIGFS_MAGIC: return "configfs";
    case EFIVARFS_MAGIC: return "efivarfs";
    case PSTOREFS_MAGIC: return "pstore";
    case SELINUX_MAGIC: return "selinuxfs";
    case SMACK_MAGIC: return "smackfs";
    case BINFMTFS_MAGIC: return "binfmt_misc";
    case FUSECTL_SUPER_MAGIC: return "fusectl";
    default: return nullptr;
  }
}

// Who reads, and what: filled on the JS thread, read on the reader thread.
struct Writer {
  int pid = 0;
  int tgid = 0;  // its process: whose fd table /proc/self/fd/N names
  uint32_t fsuid = 0;
  uint32_t fsgid = 0;
  std::vector<gid_t> groups;
  uint64_t capEff = 0;
};

// One read: the request, then its outcome, shared by the reader thread and
// the JS thread that takes it.
struct Read {
  Writer writer;
  std::string path;
  // The O_PATH fd of the file read: the JS thread names it (readlink), in
  // the daemon's root, not the writer's, then closes it.
  UniqueFd opened;
  std::vector<uint8_t> data;
  // A loaded program instead of an object file: its id, and where it came
  // from ("pinned:PATH" is filled on the JS thread; "fd:PID/N").
  uint32_t progId = 0;
  std::string source;
  // The object libbpf opened from `data` (named by the file's basename, the
  // prefix of its internal maps); null for a program, or when it failed.
  std::shared_ptr<Opened> object;
  Failure openFailure;  // libbpf's refusal of the bytes read: details.object names the file
};

int OpenAt2(int dirfd, const char* path, int flags, uint64_t resolve) {
  struct open_how how = {};
  how.flags = flags;
  how.resolve = resolve;
  return static_cast<int>(syscall(SYS_openat2, dirfd, path, &how, sizeof(how)));
}

// The writer's file access rights on this thread only. Raw syscalls: glibc's
// setgroups/setfsuid wrappers may broadcast to every thread of the process.
bool TakeRights(const Writer& w, Failure* f, const std::string& what) {
  if (syscall(SYS_setgroups, w.groups.size(), w.groups.data()) != 0) {
    f->set(errno, what + ": cannot take the writer's groups: " + ErrText(errno));
    return false;
  }
  syscall(SYS_setfsgid, w.fsgid);
  syscall(SYS_setfsuid, w.fsuid);
  // setfs[ug]id report nothing: ask again (-1 changes nothing, returns the current one)
  if (static_cast<uint32_t>(syscall(SYS_setfsgid, -1)) != w.fsgid ||
      static_cast<uint32_t>(syscall(SYS_setfsuid, -1)) != w.fsuid) {
    f->set(EPERM, what + ": cannot take the writer's fsuid/fsgid");
    return false;
  }
  // Effective = the writer's ∩ our permitted (setfsuid to non-zero already
  // dropped the file capabilities from our effective set; the writer may
  // still hold them, as a non-root process with ambient capabilities can).
  __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capget, &hdr, data) != 0) {
    f->set(errno, what + ": capget: " + ErrText(errno));
    return false;
  }
  for (int i = 0; i < 2; i++) {
    uint32_t writer = static_cast<uint32_t>(w.capEff >> (32 * i));
    data[i].effective = data[i].permitted & writer;
    data[i].permitted = data[i].effective;
    data[i].inheritable = 0;
  }
  if (syscall(SYS_capset, &hdr, data) != 0) {
    f->set(errno, what + ": cannot take the writer's capabilities: " + ErrText(errno));
    return false;
  }
  return true;
}

// "/proc/self/fd/N": N, else -1.
int WriterFdNumber(const std::string& path) {
  const std::string prefix = "/proc/self/fd/";
  if (path.compare(0, prefix.size(), prefix) != 0) return -1;
  std::string n = path.substr(prefix.size());
  if (n.empty() || n.size() > 9 || n.find_first_not_of("0123456789") != std::string::npos) return -1;
  return atoi(n.c_str());
}

// /proc/self/fd/N means the writer's fd N: a duplicate of it by pidfd_getfd
// (PTRACE_MODE_ATTACH_REALCREDS over the writer, which the daemon holds),
// taken with the daemon's rights before this thread takes the writer's. Only
// a BPF program of type LSM is taken; false for anything else (the path then
// gets the answer it always had: EXDEV).
bool TakeWriterProgram(Read* r, int selfFds) {
  int n = WriterFdNumber(r->path);
  if (n < 0) return false;
  int pid = r->writer.tgid > 0 ? r->writer.tgid : r->writer.pid;
  UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd.valid()) return false;
  UniqueFd fd(static_cast<int>(syscall(SYS_pidfd_getfd, pidfd.get(), n, 0)));
  if (!fd.valid() || BpfFdKind(fd.get(), selfFds) != "prog") return false;
  bpf_prog_info info = {};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0 || info.type != BPF_PROG_TYPE_LSM) return false;
  r->progId = info.id;
  r->source = "fd:" + std::to_string(pid) + "/" + std::to_string(n);
  return true;
}

void ReadAsWriter(Read* r, Failure* f) {
  const std::string& path = r->path;
  const std::string what = "read object " + path;
  if (path.empty() || path.find('\0') != std::string::npos) {
    f->set(ENOENT, what + ": empty path");
    return;
  }
  // Our own fd table, opened while / is still ours: the reopen goes through it.
  UniqueFd selfFds(open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!selfFds.valid()) {
    f->set(errno, what + ": cannot open /proc/self/fd: " + ErrText(errno));
    return;
  }
  if (TakeWriterProgram(r, selfFds.get())) return;
  const std::string proc = "/proc/" + std::to_string(r->writer.pid);
  UniqueFd root(open((proc + "/root").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  UniqueFd cwd(root.valid() ? open((proc + "/cwd").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC) : -1);
  if (!root.valid() || !cwd.valid()) {
    int e = errno == ENOENT ? ESRCH : errno;
    f->set(e, what + ": cannot see process " + std::to_string(r->writer.pid) + ": " + ErrText(e));
    return;
  }
  // This thread's root and cwd become the writer's. Its cwd may lie outside
  // its root (it chrooted without chdir): so does ours then, as for it.
  if (unshare(CLONE_FS) != 0 || fchdir(root.get()) != 0 || chroot(".") != 0 || fchdir(cwd.get()) != 0) {
    f->set(errno, what + ": cannot take the writer's root and cwd: " + ErrText(errno));
    return;
  }
  if (!TakeRights(r->writer, f, what)) return;

  // O_PATH: nothing is opened yet (a fifo would block, a device could act).
  int fd = OpenAt2(AT_FDCWD, path.c_str(), O_PATH | O_CLOEXEC, RESOLVE_NO_MAGICLINKS);
  if (fd < 0 && errno == ELOOP) {
    // A loop, or a magic link (RESOLVE_NO_MAGICLINKS says ELOOP for both):
    // resolved without the flag, a magic link opens (O_PATH, closed at once).
    UniqueFd probe(OpenAt2(AT_FDCWD, path.c_str(), O_PATH | O_CLOEXEC, 0));
    if (probe.valid()) {
      f->set(EXDEV, what + ": the path goes through a /proc magic link (/proc/PID/fd/N, /dev/fd/N, "
                           "/proc/PID/root, …); name the object file itself");
      return;
    }
    errno = ELOOP;
  }
  if (fd < 0) {
    int e = errno;
    if (e == ENOSYS) {
      f->set(ENOSYS, what + ": this kernel has no openat2(2) (Linux 5.6), needed to resolve paths safely");
    } else {
      f->set(e, what + ": " + ErrText(e));
    }
    return;
  }
  UniqueFd pathFd(fd);
  struct statfs sfs;
  if (fstatfs(pathFd.get(), &sfs) != 0) {
    f->set(errno, what + ": " + ErrText(errno));
    return;
  }
  if (static_cast<unsigned long>(sfs.f_type) == PROC_SUPER_MAGIC) {
    f->set(EXDEV, what + ": the path leads into /proc (procfs), where /proc/self is the daemon and no file "
                         "is an object; name the object file itself");
    return;
  }
  struct stat st;
  if (fstat(pathFd.get(), &st) != 0) {
    f->set(errno, what + ": " + ErrText(errno));
    return;
  }
  if (S_ISDIR(st.st_mode)) {
    f->set(EISDIR, what + ": is a directory");
    return;
  }
  if (!S_ISREG(st.st_mode)) {
    f->set(ENOEXEC, what + ": not a regular file");
    return;
  }
  if (static_cast<unsigned long>(sfs.f_type) == BPF_FS_MAGIC) {
    // A pin. BPF_OBJ_GET from this thread: the writer's root, cwd and file
    // access rights (a program's pin opens read-write: the writer needs both
    // permissions on it, as for its own bpf_obj_get). Then make sure the
    // name still leads to the inode checked above.
    UniqueFd obj(bpf_obj_get(path.c_str()));
    if (!obj.valid()) {
      int e = errno;
      f->set(e, what + ": open the pin as the writer: " + ErrText(e));
      return;
    }
    UniqueFd again(OpenAt2(AT_FDCWD, path.c_str(), O_PATH | O_CLOEXEC, RESOLVE_NO_MAGICLINKS));
    struct stat st2;
    if (!again.valid() || fstat(again.get(), &st2) != 0 || st2.st_dev != st.st_dev || st2.st_ino != st.st_ino) {
      f->set(EAGAIN, what + ": the pin was replaced while it was read; try again");
      return;
    }
    std::string kind = BpfFdKind(obj.get(), selfFds.get());
    if (kind != "prog") {
      f->set(ENOEXEC, what + ": a pinned " + (kind.empty() ? "bpf object" : kind) +
                          " on bpffs (a kernel interface file), not a program nor a BPF object; it was not read");
      return;
    }
    bpf_prog_info info = {};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(obj.get(), &info, &len) != 0) {
      f->set(errno, what + ": program info: " + ErrText(errno));
      return;
    }
    r->progId = info.id;
    r->opened = std::move(pathFd);
    return;
  }
  if (const char* fs = PseudoFs(static_cast<unsigned long>(sfs.f_type))) {
    f->set(ENOEXEC, what + ": a kernel interface file on " + fs + ", never a BPF object; it was not read");
    return;
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxObject) {
    f->set(E2BIG, what + ": " + std::to_string(st.st_size) + " bytes, more than the 64 MiB limit");
    return;
  }
  const std::string name = std::to_string(pathFd.get());
  // Reopen for reading through the O_PATH fd: same inode, and the permission
  // check, made now with the writer's rights (EACCES).
  // O_NONBLOCK: a regular file can still be a stream that waits for data
  // (krsifs's own events file, read here by the daemon that must answer it);
  // none of those is an object, and waiting on one would hold its writer.
  UniqueFd file(openat(selfFds.get(), name.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!file.valid()) {
    f->set(errno, what + ": " + ErrText(errno));
    return;
  }
  // Read to EOF, not to st_size: a FUSE file may lie about its size.
  r->data.reserve(static_cast<size_t>(st.st_size));
  std::vector<uint8_t> chunk(1 << 16);
  for (;;) {
    ssize_t got = read(file.get(), chunk.data(), chunk.size());
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        f->set(ENOEXEC, what + ": a stream with nothing to read now (like trace_pipe or krsifs's events), "
                               "not a BPF object");
        return;
      }
      f->set(errno, what + ": " + ErrText(errno));
      return;
    }
    if (got == 0) break;
    if (r->data.size() + got > kMaxObject) {
      f->set(E2BIG, what + ": more than the 64 MiB limit");
      return;
    }
    r->data.insert(r->data.end(), chunk.data(), chunk.data() + got);
  }
  // The basename of what was opened: d_path through our own fd table
  char seen[4096];
  ssize_t n = readlinkat(selfFds.get(), name.c_str(), seen, sizeof(seen) - 1);
  std::string base = n > 0 ? std::string(seen, n) : path;
  base = base.substr(base.rfind('/') == std::string::npos ? 0 : base.rfind('/') + 1);
  r->opened = std::move(pathFd);
  ClearLibbpfLog();
  r->object = std::make_shared<Opened>();
  r->object->obj = OpenObject(r->data, base, &r->openFailure);
  if (!r->object->obj) r->object.reset();
}

// The bytes as a Buffer that owns them: no copy on the JS thread (a 600 KB
// object's copy, into freshly mapped pages, held the event loop for
// milliseconds under TCG).
Napi::Value TakeBytes(Napi::Env env, std::vector<uint8_t> bytes) {
  if (bytes.empty()) return Napi::Buffer<uint8_t>::New(env, 0);
  auto* owned = new std::vector<uint8_t>(std::move(bytes));
  return Napi::Buffer<uint8_t>::New(env, owned->data(), owned->size(),
                                    [](Napi::Env, uint8_t*, std::vector<uint8_t>* v) { delete v; }, owned);
}

// On the JS thread: what the read found.
Napi::Value ReadValue(Napi::Env e, BpfEnvData* data, Read* r) {
  // readlink of our own fd: a d_path in the daemon's root, no filesystem asked
  char seen[4096];
  ssize_t n = r->opened.valid()
                  ? readlink(("/proc/self/fd/" + std::to_string(r->opened.get())).c_str(), seen, sizeof(seen) - 1)
                  : -1;
  std::string path = n > 0 ? std::string(seen, n) : r->path;
  Napi::Object o = Napi::Object::New(e);
  o.Set("data", TakeBytes(e, std::move(r->data)));
  o.Set("path", path);
  // libbpf's refusal: lib/kernel/index.ts words it (the ELF header first)
  if (r->openFailure.failed()) o.Set("openError", MakeError(e, r->openFailure));
  if (r->progId != 0) {
    Napi::Object p = Napi::Object::New(e);
    p.Set("id", r->progId);
    p.Set("source", r->source.empty() ? "pinned:" + path : r->source);
    o.Set("program", p);
  }
  if (r->object) o.Set("object", NewOpened(e, data, std::move(r->object)));
  return o;
}

// The writer as lib/kernel/index.ts checked and packed it: a Uint32Array of
// pid, tgid, fsuid, fsgid, CapEff's low and high words, then the groups.
bool ParseWriter(Napi::Value v, Writer* w) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array) return false;
  Napi::Uint32Array a = v.As<Napi::Uint32Array>();
  if (a.ElementLength() < 6 || a.ElementLength() - 6 > kMaxGroups) return false;
  w->pid = static_cast<int>(a[0]);
  w->tgid = static_cast<int>(a[1]);
  w->fsuid = a[2];
  w->fsgid = a[3];
  w->capEff = a[4] | static_cast<uint64_t>(a[5]) << 32;
  w->groups.assign(a.Data() + 6, a.Data() + a.ElementLength());
  return w->pid > 0;
}

Napi::Value ReadObject(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* data = static_cast<BpfEnvData*>(info.Data());
  auto read = std::make_shared<Read>();
  if (info.Length() < 2 || !ParseWriter(info[0], &read->writer) || !info[1].IsString()) {
    Napi::TypeError::New(env, "readObject(writer: Uint32Array, path: string)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  read->path = info[1].As<Napi::String>().Utf8Value();
  // keepAlive false: reads in flight do not keep the process alive; the JS
  // side's timer does, for as long as someone waits for one
  return OnOwnThread(env, data, "krsifs:read", false, [read](Failure* f) { ReadAsWriter(read.get(), f); },
                     [read, data](Napi::Env e) { return ReadValue(e, data, read.get()); });
}
}  // namespace

void InitRead(Napi::Env env, Napi::Object exports, BpfEnvData* data) {
  exports.Set("readObject", Napi::Function::New(env, ReadObject, "readObject", data));
}

}  // namespace krsi
