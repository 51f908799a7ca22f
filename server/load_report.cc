#include "server/load_report.h"

#include "tlcm/v1/load_report.pb.h"

namespace tlcm::server {

std::string SerializeLoadReport(int64_t queued_image_steps, int64_t call_image_steps) {
  tlcm::v1::LoadReport report;
  (*report.mutable_named_metrics())[kQueuedImageStepsMetric] =
      static_cast<double>(queued_image_steps);
  (*report.mutable_request_cost())[kImageStepsCost] = static_cast<double>(call_image_steps);
  return report.SerializeAsString();
}

}  // namespace tlcm::server
