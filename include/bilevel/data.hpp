// Classification data for the hyper-cleaning workload: readers (IDX, gzipped or not; LIBSVM),
// a synthetic generator, and the protocol's split / standardization / label corruption.
// Every reader error names the file (and the line, for text formats).
#pragma once

#include <bilevel/types.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace bilevel {

/// Samples with dense features, stored sample-major: sample i is x[i * features ... + features).
/// (As a column-major matrix this is features x samples: one column per sample.)
struct Dataset {
  std::string source;              ///< where it came from, for messages
  index_t samples = 0;
  index_t features = 0;
  int classes = 0;
  std::vector<float> x;
  std::vector<std::int32_t> labels;
  /// One rank's shard of a split (load_hyperclean_shard): these are samples
  /// [first, first + samples) of a split of `total`. total = 0: the data set is whole.
  index_t first = 0, total = 0;
  /// The samples of the whole split this is (a shard) or is.
  index_t whole_samples() const { return total ? total : samples; }

  /// Throws InvalidArgument naming `source` if sizes disagree, a label is outside
  /// [0, classes) or a feature is NaN or infinite.
  void validate() const;
};

/// An IDX image file (magic 0x00000803) and label file (0x00000801), gzipped or not. Pixels
/// become floats in [0, 255]. The labels must lie in the declared range 0..classes-1 (10 for
/// MNIST and Fashion-MNIST) and take at least two values; a header cannot claim more than the
/// file holds, and a damaged gzip stream (bad CRC, cut trailer) is an error naming the file.
Dataset read_idx(const std::string& images_path, const std::string& labels_path,
                 int classes = 10);

/// A LIBSVM text file ("label index:value ..."; 1-based indices). Labels are integers; the
/// distinct labels, sorted, become classes 0..C-1 (at least two). `features` = 0 infers the
/// dimension. Features are stored dense: widths beyond 2^22 are refused (sparse input is not
/// supported yet).
Dataset read_libsvm(const std::string& path, index_t features = 0);

/// LIBSVM files read as the splits of one data set (e.g. ijcnn1 and ijcnn1.t): one dimension
/// for all (the largest index in any of them, or `features`) and one class map (the distinct
/// labels of all the files, sorted, as classes 0..C-1), so that a split may lack a class or a
/// feature. Errors name the file and line as read_libsvm's.
std::vector<Dataset> read_libsvm_splits(const std::vector<std::string>& paths,
                                        index_t features = 0);

/// A data set by name: "fashion-mnist" (Debian's dataset-fashion-mnist), a folder of IDX files
/// under their MNIST names (a training pool and a separate test set), or a LIBSVM file (one
/// pool). Throws InvalidArgument naming the path or the missing file, after `what` (the
/// option or argument that named it, e.g. "--data").
struct DataSource {
  Dataset pool;                  ///< train + validation (+ test when no separate test set)
  std::optional<Dataset> test;   ///< the separate test set of IDX sources
  std::string description;
};
DataSource load_data_source(const std::string& spec, const std::string& what = "data");
/// The description load_data_source gives `spec`, without reading the data (same errors for a
/// path that does not exist).
std::string describe_data_source(const std::string& spec, const std::string& what = "data");

/// Gaussian class clusters: class means ~ N(0, separation^2 I / features), samples = mean +
/// N(0, I), labels uniform. Seeded and reproducible.
/// Binary logistic data where only some features matter (the setting per-feature L2 is for):
/// x ~ N(0, I), the first `informative` features carry weights w_j ~ N(0, 4 / informative),
/// the others none, label = 1 with probability sigmoid(w . x). Seeded and reproducible.
Dataset make_sparse_logistic(index_t samples, index_t features, index_t informative,
                             std::uint64_t seed);

Dataset make_synthetic(index_t samples, index_t features, int classes, std::uint64_t seed,
                       double separation = 3.0);

/// The train / validation / test sizes of the hyper-cleaning protocol.
struct SplitSizes {
  index_t train = 20000;
  index_t validation = 5000;
  index_t test = 10000;
};

/// Which protocol prepares the hyper-cleaning data (the split and the standardization are the
/// same in both: train statistics, population deviation, constant features left unscaled).
///  - `bilevel`: exactly round(p n) train labels replaced, each by a different class drawn
///    uniformly; the model has a bias (a constant feature 1 after the data's features).
///  - `benchopt`: benchopt's benchmark_bilevel datacleaning (datasets/mnist.py at 3ad65dc):
///    each train label replaced with probability p by a class drawn uniformly from all C, which
///    may be the true one (so about p (C - 1) / C of the labels end up wrong); no bias. Its
///    objective, g = mean sigmoid(x_i) CE_i + reg ||W||^2 with reg 0.2 and x starting at -2, is
///    the CLI's part (bilevel hyperclean --protocol benchopt).
enum class HypercleanProtocol { bilevel, benchopt };
/// "bilevel" | "benchopt"; InvalidArgument naming the text otherwise.
HypercleanProtocol parse_hyperclean_protocol(const std::string& text);
std::string to_string(HypercleanProtocol protocol);

/// The prepared hyper-cleaning data: standardized with train statistics, train labels corrupted.
/// From load_hyperclean_shard the three splits are one rank's shards (Dataset::first, total)
/// and clean_train_labels is the train shard's; `corrupted` always covers the whole train split.
struct HypercleanData {
  Dataset train;                          ///< labels are the corrupted ones
  Dataset validation;
  Dataset test;
  std::vector<std::int32_t> clean_train_labels;
  std::vector<std::uint8_t> corrupted;    ///< 1 where the train label is wrong (replaced by another)
  /// The model's bias feature (a constant 1 after the features): the protocol's choice, which
  /// HypercleanProblem follows (the benchopt protocol has none).
  bool bias = true;
};

/// Splits `pool` (shuffled with `seed`) into train and validation, and test unless `test_pool`
/// is given (then test comes from it); standardizes every feature with the train mean and
/// standard deviation (constant features: deviation 1; both summed in double over the train
/// samples in the pool's order); replaces the label of a fraction `corruption` of the train
/// samples by a different class drawn uniformly (or as `protocol` says). Throws
/// InvalidArgument when the sizes do not fit the data or corruption is outside [0, 1].
HypercleanData prepare_hyperclean(const Dataset& pool, const std::optional<Dataset>& test_pool,
                                  const SplitSizes& sizes, double corruption, std::uint64_t seed,
                                  HypercleanProtocol protocol = HypercleanProtocol::bilevel);

/// Splits given as they are (another program's, e.g. benchopt's): no shuffle, no label
/// corrupted; every feature standardized with the train mean and standard deviation as
/// prepare_hyperclean does, unless `standardize` is false (features as given). The three must
/// have the same features; classes become the largest count among them. Throws
/// InvalidArgument naming the split that disagrees.
HypercleanData prepare_given_splits(Dataset train, Dataset validation, Dataset test,
                                    bool standardize = true);

/// The same data for rank `rank` of `ranks` in a data-parallel run, read from `spec` (as
/// load_data_source: fashion-mnist, an IDX folder or a LIBSVM file) without holding the other
/// ranks' samples: each split is the rank's shard, samples Communicator::shard_of(split, rank,
/// ranks) of prepare_hyperclean's split, bit for bit (the permutation and the corruption
/// depend on the sizes and the seed alone, and every rank sums the train statistics itself,
/// in the same order, while it streams the file). Memory: the rank's samples as floats, plus
/// about 14 bytes per sample of the pool (its permutation, its labels, two masks) and 13 per
/// training sample (the corruption plan). Time: every rank streams the whole file twice (IDX)
/// or three times (LIBSVM: a first pass counts the samples, features and labels). Errors as
/// load_data_source and prepare_hyperclean; a split with fewer samples than ranks is refused.
HypercleanData load_hyperclean_shard(const std::string& spec, const SplitSizes& sizes,
                                     double corruption, std::uint64_t seed, int rank, int ranks,
                                     const std::string& what = "data",
                                     HypercleanProtocol protocol = HypercleanProtocol::bilevel);

/// Precision, recall and F1 of flagging (flagged[i] = 1) against the truth (corrupted[i] = 1).
struct DetectionScores {
  double precision = 0, recall = 0, f1 = 0;
  index_t flagged = 0, true_positives = 0;
};
DetectionScores detection_scores(const std::vector<std::uint8_t>& flagged,
                                 const std::vector<std::uint8_t>& corrupted);
/// The same from counts: flagged samples, flagged samples truly corrupted, corrupted samples.
DetectionScores detection_scores(index_t flagged, index_t true_positives, index_t corrupted);

}  // namespace bilevel
