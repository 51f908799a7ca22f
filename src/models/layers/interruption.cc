#include "models/layers/interruption.h"

#include <utility>

namespace tlcm {
namespace {

thread_local std::function<bool()> current_check;

}  // namespace

ScopedInterruption::ScopedInterruption(std::function<bool()> check)
    : previous_(std::exchange(current_check, std::move(check))) {}

ScopedInterruption::~ScopedInterruption() { current_check = std::move(previous_); }

void ThrowIfInterrupted() {
  if (current_check && current_check()) throw Interrupted();
}

}  // namespace tlcm
