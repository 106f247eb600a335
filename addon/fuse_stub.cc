#include <napi.h>
namespace krsi { void InitFuse(Napi::Env, Napi::Object) {} }
