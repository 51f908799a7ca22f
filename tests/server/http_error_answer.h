// Reading the OpenAI-shaped error answers of the HTTP door in tests.
#pragma once

#include <httplib.h>

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

namespace tlcm::testing {

// The error object of an error answer, after checking (as test failures) that there is an
// answer, that its status is `status` and that its body holds an "error" object.
inline nlohmann::json ErrorOf(const httplib::Result& result, int status) {
  EXPECT_TRUE(result) << "no answer";
  if (!result) return nlohmann::json();
  EXPECT_EQ(result->status, status) << result->body;
  const nlohmann::json body = nlohmann::json::parse(result->body, nullptr, false);
  EXPECT_TRUE(body.contains("error")) << result->body;
  return body.value("error", nlohmann::json::object());
}

}  // namespace tlcm::testing
