#include "errors.h"

#include <string.h>

namespace krsi {

namespace {
struct ErrorCtor {
  Napi::FunctionReference ctor;
};

ErrorCtor* Ctor(Napi::Env env) { return env.GetInstanceData<ErrorCtor>(); }

// initialize(KrsiError): JS gives us its error class so C++ builds real
// instances, as better-sqlite3 does with SqliteError.
Napi::Value Initialize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsFunction()) {
    Napi::TypeError::New(env, "initialize: expected the KrsiError class").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto* data = Ctor(env);
  data->ctor = Napi::Persistent(info[0].As<Napi::Function>());
  return env.Undefined();
}
// strerror(errno): the C library's words, as the shell prints them
// (error_log is compared with what `echo` said). GNU strerror_r: thread-safe,
// and it returns "Unknown error N" itself for what it does not know.
Napi::Value StrError(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "strerror(errno: number)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  char buf[256];
  const char* s = strerror_r(info[0].As<Napi::Number>().Int32Value(), buf, sizeof(buf));
  return Napi::String::New(env, s);
}
}  // namespace

Napi::Value MakeError(Napi::Env env, const Failure& f) {
  auto* data = Ctor(env);
  Napi::Object details = Napi::Object::New(env);
  for (const Failure::Detail& d : f.details) {
    if (d.kind == Failure::Detail::kNumber) details.Set(d.key, Napi::Number::New(env, d.number));
    else if (d.kind == Failure::Detail::kBool) details.Set(d.key, Napi::Boolean::New(env, true));
    else details.Set(d.key, Napi::String::New(env, d.text));
  }
  Napi::Array log = Napi::Array::New(env, f.verifierLog.size());
  for (size_t i = 0; i < f.verifierLog.size(); i++) log.Set(i, Napi::String::New(env, f.verifierLog[i]));
  if (data == nullptr || data->ctor.IsEmpty()) {
    Napi::Error e = Napi::Error::New(env, f.message);
    e.Set("errno", Napi::Number::New(env, f.err));
    return e.Value();
  }
  Napi::Object opts = Napi::Object::New(env);
  if (!f.verifierLog.empty()) opts.Set("verifierLog", log);
  if (!f.details.empty()) opts.Set("details", details);
  return data->ctor.New({Napi::Number::New(env, f.err), Napi::String::New(env, f.message), opts});
}

Napi::Value MakeError(Napi::Env env, int err, const std::string& message) {
  Failure f;
  f.set(err, message);
  return MakeError(env, f);
}

void ThrowError(Napi::Env env, int err, const std::string& message) {
  Napi::Value e = MakeError(env, err, message);
  Napi::Error(env, e).ThrowAsJavaScriptException();
}

void InitErrors(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new ErrorCtor());
  exports.Set("initialize", Napi::Function::New(env, Initialize, "initialize"));
  exports.Set("strerror", Napi::Function::New(env, StrError, "strerror"));
}

}  // namespace krsi
