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
  // One entry of error.details: a string, a number or a boolean.
  struct Detail {
    enum Kind { kText, kNumber, kBool };
    std::string key, text;
    double number = 0;
    Kind kind = kText;
  };
  int err = 0;  // positive errno
  std::string message;
  std::vector<std::string> verifierLog;
  std::vector<Detail> details;

  bool failed() const { return err != 0; }
  void set(int e, std::string msg) {
    err = e < 0 ? -e : e;
    message = std::move(msg);
  }
  Failure& detail(std::string key, std::string text) {
    details.push_back({std::move(key), std::move(text), 0, Detail::kText});
    return *this;
  }
  Failure& detail(std::string key, double number) {
    details.push_back({std::move(key), "", number, Detail::kNumber});
    return *this;
  }
  Failure& flag(std::string key) {
    details.push_back({std::move(key), "", 1, Detail::kBool});
    return *this;
  }
};

// Build a KrsiError instance (or a plain Error if initialize() was not called).
Napi::Value MakeError(Napi::Env env, const Failure& f);
Napi::Value MakeError(Napi::Env env, int err, const std::string& message);

// Throw it as a pending JS exception (we build without C++ exceptions).
void ThrowError(Napi::Env env, int err, const std::string& message);

void InitErrors(Napi::Env env, Napi::Object exports);

}  // namespace krsi
