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
  DetectionScores s;
  index_t truth = 0;
  for (std::size_t i = 0; i < flagged.size(); ++i) {
    s.flagged += flagged[i];
    truth += corrupted[i];
    s.true_positives += flagged[i] && corrupted[i];
  }
  s.precision = s.flagged ? double(s.true_positives) / s.flagged : 0.0;
  s.recall = truth ? double(s.true_positives) / truth : 0.0;
  s.f1 = s.precision + s.recall > 0 ? 2 * s.precision * s.recall / (s.precision + s.recall) : 0.0;
  return s;
}

}  // namespace bilevel
