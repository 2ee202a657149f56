// Which samples of a finite sum a rank owns (distributed.hpp): kept apart from the
// communicators so that the data loaders need nothing else of the distributed layer.
#include <bilevel/distributed.hpp>
#include <bilevel/error.hpp>

#include <algorithm>

namespace bilevel {

Shard Communicator::shard_of(index_t n, int rank, int size) {
  BILEVEL_EXPECTS(n >= 0 && size >= 1 && rank >= 0 && rank < size,
                  "shard: " << n << " samples over " << size << " ranks, rank " << rank);
  const index_t base = n / size, extra = n % size;
  const index_t r = rank;
  const index_t begin = r * base + std::min(r, extra);
  return Shard{begin, begin + base + (r < extra ? 1 : 0)};
}

}  // namespace bilevel
