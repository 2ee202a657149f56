#pragma once

#define BILEVEL_VERSION_MAJOR 0
#define BILEVEL_VERSION_MINOR 1
#define BILEVEL_VERSION_PATCH 0

namespace bilevel {
inline constexpr const char* version = "0.1.0";
}  // namespace bilevel
