#include <bilevel/data.hpp>
#include <bilevel/error.hpp>

#include <cmath>

namespace bilevel {

void Dataset::validate() const {
  BILEVEL_EXPECTS(samples >= 0 && features >= 0, source << ": negative size");
  BILEVEL_EXPECTS(static_cast<index_t>(x.size()) == samples * features,
                  source << ": " << x.size() << " feature values for " << samples << " x "
                         << features);
  BILEVEL_EXPECTS(static_cast<index_t>(labels.size()) == samples,
                  source << ": " << labels.size() << " labels for " << samples << " samples");
  BILEVEL_EXPECTS(classes >= 2 || samples == 0,
                  source << ": needs at least 2 classes, has " << classes);
  for (index_t i = 0; i < samples; ++i)
    BILEVEL_EXPECTS(labels[i] >= 0 && labels[i] < classes,
                    source << ": label " << labels[i] << " of sample " << i
                           << " is outside [0, " << classes << ")");
  for (std::size_t k = 0; k < x.size(); ++k)
    BILEVEL_EXPECTS(std::isfinite(x[k]), source << ": feature " << k % features << " of sample "
                                                << k / features << " is " << x[k]);
}

DetectionScores detection_scores(const std::vector<std::uint8_t>& flagged,
                                 const std::vector<std::uint8_t>& corrupted) {
  BILEVEL_EXPECTS(flagged.size() == corrupted.size(), "detection_scores: sizes differ");
  index_t n_flagged = 0, truth = 0, true_positives = 0;
  for (std::size_t i = 0; i < flagged.size(); ++i) {
    n_flagged += flagged[i];
    truth += corrupted[i];
    true_positives += flagged[i] && corrupted[i];
  }
  return detection_scores(n_flagged, true_positives, truth);
}

DetectionScores detection_scores(index_t flagged, index_t true_positives, index_t corrupted) {
  DetectionScores s;
  s.flagged = flagged;
  s.true_positives = true_positives;
  s.precision = flagged ? double(true_positives) / flagged : 0.0;
  s.recall = corrupted ? double(true_positives) / corrupted : 0.0;
  s.f1 = s.precision + s.recall > 0 ? 2 * s.precision * s.recall / (s.precision + s.recall) : 0.0;
  return s;
}

}  // namespace bilevel
