#include "agent/events/emission.h"

namespace vigil {

uint8_t notable_reasons(const ApiCallEvent& call, uint8_t from_inventory) {
  uint8_t r = from_inventory;
  int st = call.response.status;
  if (st >= 500) r |= kNotableServerError;
  if (st == 401 || st == 403) r |= kNotableAuthFailure;
  if (call.grpc) {
    int g = call.grpc->status;  // 16 UNAUTHENTICATED, 7 PERMISSION_DENIED; 13 INTERNAL, 14 UNAVAILABLE, 15 DATA_LOSS
    if (g == 7 || g == 16) r |= kNotableAuthFailure;
    if (g == 13 || g == 14 || g == 15) r |= kNotableServerError;
  }
  if (!call.sensitive.empty()) r |= kNotableSensitive;
  return r;
}

}  // namespace vigil
