#include "core/files/catalog.h"

#include <openssl/evp.h>

#include <stdexcept>

#include "core/util/hex.h"

namespace luacs::files {

void Catalog::put(std::shared_ptr<const File> f) {
  if (!f) return;
  std::string name = f->name;
  std::lock_guard lock(mu_);
  files_.insert_or_assign(std::move(name), std::move(f));
}

std::shared_ptr<const File> Catalog::put_if_absent(std::shared_ptr<const File> f) {
  if (!f) return nullptr;
  std::string name = f->name;
  std::lock_guard lock(mu_);
  return files_.try_emplace(std::move(name), std::move(f)).first->second;
}

std::shared_ptr<const File> Catalog::find(std::string_view name) const {
  std::lock_guard lock(mu_);
  auto it = files_.find(name);
  return it == files_.end() ? nullptr : it->second;
}

size_t Catalog::size() const {
  std::lock_guard lock(mu_);
  return files_.size();
}

}  // namespace luacs::files
