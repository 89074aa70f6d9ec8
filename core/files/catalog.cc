#include "core/files/catalog.h"

#include <openssl/evp.h>

#include <stdexcept>

#include "core/util/hex.h"

namespace luacs::files {

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 200 || name.front() == '.') return false;
  for (const char c : name) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string sha256_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("sha256: EVP_Digest failed");
  return util::to_hex(md, len);
}

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
