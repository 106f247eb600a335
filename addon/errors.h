// One error type for the whole addon: every failure reaches JS as a KrsiError
// (lib/errors.ts), built from the constructor JS hands us in initialize().
#pragma once

#include <napi.h>

#include <string>
#include <vector>

namespace krsi {

// What a worker thread records on failure; turned into a KrsiError on the JS
// thread. Plain data, so it crosses threads without touching N-API.
struct Failure {
  int err = 0;  // positive errno
  std::string message;
  std::vector<std::string> verifierLog;
  std::string detailsJson;  // optional: a JSON object merged into error.details

  bool failed() const { return err != 0; }
  void set(int e, std::string msg) {
    err = e < 0 ? -e : e;
    message = std::move(msg);
  }
};

// Build a KrsiError instance (or a plain Error if initialize() was not called).
Napi::Value MakeError(Napi::Env env, const Failure& f);
Napi::Value MakeError(Napi::Env env, int err, const std::string& message);

// Throw it as a pending JS exception (we build without C++ exceptions).
void ThrowError(Napi::Env env, int err, const std::string& message);

void InitErrors(Napi::Env env, Napi::Object exports);

}  // namespace krsi
