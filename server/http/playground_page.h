// The playground page (server/http/playground/index.html), embedded into the binary at build
// time by cmake/EmbedText.cmake, so that tlcm-server serves it at GET / without any file beside
// it.
#pragma once

#include "absl/strings/string_view.h"

namespace tlcm::server {

// The page's bytes (UTF-8 HTML, self-contained: no external scripts, styles or fonts).
absl::string_view PlaygroundPage();

}  // namespace tlcm::server
