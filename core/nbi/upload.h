// Internal to core/nbi: the files of [files] dir as the API sees them
// (routes_files.cc): PUT /files/{name} streams its body into the folder
// through an Upload (upload.cc), GET and DELETE work on the folder and on
// the generated files of the `files` table.
//
// File I/O that may wait on the disk (fsync, rename, unlink, a directory
// scan) runs on a short-lived thread of its own (off_loop), never on the
// API's loop; the result comes back to the loop through the API's executor.
#pragma once

#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "core/nbi/api.h"

namespace luacs::nbi {

// The folder's path of a file name (valid per text::safe_file_name).
inline std::string dir_path(const std::string& dir, const std::string& name) {
  return dir.empty() || dir.back() == '/' ? dir + name : dir + "/" + name;
}

// Why the file routes refuse `name`, or nullopt when they take it: only the
// file server's safe names ([A-Za-z0-9._-], not starting with '.', at most
// 200 characters), so no slash, "..", NUL or hidden file ever gets through.
std::optional<std::string> bad_file_name(const std::string& name);

// Runs work() on a thread of its own, then done(result) on the API's loop
// (dropped if the API has stopped meanwhile). False when no thread could be
// started (nothing ran).
template <class T>
bool off_loop(Api& api, std::function<T()> work, std::function<void(T)> done) {
  try {
    std::thread([work = std::move(work), done = std::move(done), back = api.executor()]() mutable {
      auto result = std::make_shared<T>(work());
      // done moves to the loop: what it holds is released there, not here.
      back([done = std::move(done), result] { done(std::move(*result)); });
    }).detach();
    return true;
  } catch (const std::exception&) {  // std::system_error: out of threads
    return false;
  }
}

// The Route::stream_body of PUT /files/{name}: checks the name, the
// metadata and the announced size, then opens the temporary file the body
// goes to. Answers and returns null for a refused request.
std::unique_ptr<BodyStream> start_upload(const ExchangePtr& x);

// 507 for a full disk or quota, 500 otherwise: `what` failed with errno `err`.
void answer_io_error(const ExchangePtr& x, int err, const std::string& what);

}  // namespace luacs::nbi
