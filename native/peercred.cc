// Peer credentials of a connected Unix socket: libuv does not expose them (libuv#2255), so the
// agent's `unix` workload attestor reads them here. N-API only, so one build loads on every Node.
#include <napi.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#if defined(__APPLE__)
#include <sys/ucred.h>
#endif

namespace {

Napi::Value Fail(Napi::Env env, const char* what, int err) {
  std::string msg = std::string(what) + ": " + std::strerror(err);
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("errno", Napi::Number::New(env, err));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

// getPeerCred(fd: number): { pid: number, uid: number, gid: number }
Napi::Value GetPeerCred(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "getPeerCred(fd): fd must be a number").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  if (fd < 0) {
    Napi::TypeError::New(env, "getPeerCred(fd): fd must be >= 0").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object out = Napi::Object::New(env);
#if defined(__linux__)
  struct ucred cred;
  socklen_t len = sizeof(cred);
  std::memset(&cred, 0, sizeof(cred));
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return Fail(env, "getsockopt(SO_PEERCRED)", errno);
  }
  if (len != sizeof(cred)) return Fail(env, "getsockopt(SO_PEERCRED) short read", EINVAL);
  out.Set("pid", Napi::Number::New(env, static_cast<double>(cred.pid)));
  out.Set("uid", Napi::Number::New(env, static_cast<double>(cred.uid)));
  out.Set("gid", Napi::Number::New(env, static_cast<double>(cred.gid)));
#elif defined(__APPLE__)
  uid_t uid;
  gid_t gid;
  if (getpeereid(fd, &uid, &gid) != 0) return Fail(env, "getpeereid", errno);
  pid_t pid = 0;
  socklen_t len = sizeof(pid);
  if (getsockopt(fd, SOL_LOCAL, LOCAL_PEERPID, &pid, &len) != 0) {
    return Fail(env, "getsockopt(LOCAL_PEERPID)", errno);
  }
  out.Set("pid", Napi::Number::New(env, static_cast<double>(pid)));
  out.Set("uid", Napi::Number::New(env, static_cast<double>(uid)));
  out.Set("gid", Napi::Number::New(env, static_cast<double>(gid)));
#else
  return Fail(env, "peer credentials are not supported on this platform", ENOTSUP);
#endif
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("getPeerCred", Napi::Function::New(env, GetPeerCred, "getPeerCred"));
  return exports;
}

}  // namespace

NODE_API_MODULE(peercred, Init)
