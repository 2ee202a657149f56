// The library's binary files (checkpoints, BLVLCKPT; finite-sum quadratics, BLQUAD01) are
// little-endian, and their numbers are read and written as the host stores them: a big-endian
// host would need byte swaps, so a build there stops here instead of reading every file wrong.
// Included by each reader and writer of those formats.
#pragma once

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "bilevel's checkpoint and quadratics files are little-endian and read as stored: "
              "a big-endian host needs byte swaps");
