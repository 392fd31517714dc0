/*
 * A tiny N-API addon that points the process's standard error (file descriptor 2) at a file while the native
 * TensorFlow library loads, then puts the original back (dup/dup2: the very same open file, so a terminal
 * stays a terminal and a log file keeps its offset). TensorFlow 2.21 logs through absl before anyone can call
 * absl::InitializeLog(), and absl then writes everything to stderr whatever TF_CPP_MIN_LOG_LEVEL says
 * ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR", oneDNN's notice).
 * Node has no dup2 of its own. Built by scripts/build-addons.sh; used by src/backend/quiet.ts.
 *
 *   divert(path): stderr -> path (created or truncated); false when it could not (nothing changed)
 *   restore():    stderr -> what it was before divert(); false when nothing was diverted
 */
#include <fcntl.h>
#include <node_api.h>
#include <stdio.h>
#include <unistd.h>

static int saved = -1;

static napi_value boolean(napi_env env, int value) {
  napi_value result;
  napi_get_boolean(env, value, &result);
  return result;
}

static napi_value divert(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  char path[4096];
  size_t length = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) return boolean(env, 0);
  if (napi_get_value_string_utf8(env, argv[0], path, sizeof path, &length) != napi_ok || length == 0)
    return boolean(env, 0);
  if (saved >= 0) return boolean(env, 0);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return boolean(env, 0);
  fflush(stderr);
  saved = fcntl(2, F_DUPFD_CLOEXEC, 3);
  int ok = saved >= 0 && dup2(fd, 2) >= 0;
  if (!ok && saved >= 0) {
    close(saved);
    saved = -1;
  }
  close(fd);
  return boolean(env, ok);
}

static napi_value restore(napi_env env, napi_callback_info info) {
  (void)info;
  if (saved < 0) return boolean(env, 0);
  fflush(stderr);
  int ok = dup2(saved, 2) >= 0;
  close(saved);
  saved = -1;
  return boolean(env, ok);
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "divert", NAPI_AUTO_LENGTH, divert, NULL, &fn);
  napi_set_named_property(env, exports, "divert", fn);
  napi_create_function(env, "restore", NAPI_AUTO_LENGTH, restore, NULL, &fn);
  napi_set_named_property(env, exports, "restore", fn);
  return exports;
}
