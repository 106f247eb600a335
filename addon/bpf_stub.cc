#include <napi.h>
namespace krsi { void InitBpf(Napi::Env, Napi::Object) {} }
