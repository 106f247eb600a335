// libfuse logs its errors (bad option, bad mount point) instead of returning
// them: capture them while mounting so the KrsiError can say what went wrong.
#include <cstdarg>
#include <cstdio>
#include <string>

#include "fuse_session.h"

namespace krsi::fuse {

namespace {
// Only touched on the JS thread: libfuse runs no threads of its own here.
std::string* capture = nullptr;

void Log(enum fuse_log_level level, const char* fmt, va_list ap) {
  char line[1024];
  vsnprintf(line, sizeof line, fmt, ap);
  if (capture != nullptr) {
    capture->append(line);
  } else {
    fputs(line, stderr);
  }
}

struct Installer {
  Installer() { fuse_set_log_func(Log); }
};
}  // namespace

void StartLogCapture() {
  static Installer installed;
  delete capture;
  capture = new std::string();
}

std::string StopLogCapture() {
  std::string out = capture != nullptr ? *capture : std::string();
  delete capture;
  capture = nullptr;
  // One line per message, "; " between them, no trailing newline.
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  for (size_t i = 0; (i = out.find('\n', i)) != std::string::npos;) out.replace(i, 1, "; ");
  return out;
}

}  // namespace krsi::fuse
