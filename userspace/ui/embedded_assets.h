// The files of `orion ui`'s page, embedded in the binary at build time (cmake/EmbedAssets.cmake,
// userspace/ui/CMakeLists.txt): no files to install, no CDN. The page is one HTML file with its
// script and styles inline, bundled from userspace/ui/web/ (docs/ui.md).
//
//   if (auto page = orion::ui::EmbeddedAsset("/")) Send(page->content_type, page->body);
#pragma once

#include <optional>
#include <string_view>

namespace orion::ui {

struct EmbeddedFile {
  std::string_view body;
  std::string_view content_type;  // e.g. "text/html; charset=utf-8"
};

// The embedded file served at `path`: "/" and "/index.html" give the page; std::nullopt for
// any other path.
std::optional<EmbeddedFile> EmbeddedAsset(std::string_view path);

// False when the page could not be bundled at build time (no node_modules in
// userspace/ui/web: scripts/setup.sh runs npm ci there); the page embedded is then a short HTML
// text that says so, and `orion ui` should warn.
bool EmbeddedPageBuilt();

}  // namespace orion::ui
