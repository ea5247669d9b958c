// Who may talk to Orion's HTTP listeners (the daemon's /metrics, `orion ui`): the listen address
// (loopback unless asked) and the bearer token, shared so both check them the same way.
//
//   ASSIGN_OR_RETURN(ListenAddress address, ParseListenAddress("127.0.0.1:7070"));
//   if (!IsLoopback(address.host) && !allow_remote) return ...;
//   if (!RequestHasToken(request, token, /*query_too=*/true)) -> 401
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"

namespace httplib {
struct Request;
}

namespace orion::http {

struct ListenAddress {
  std::string host;
  int port = 0;
};

// "127.0.0.1:9464", "[::1]:9464", "localhost:9464"; the port is required (0: any free port).
StatusOr<ListenAddress> ParseListenAddress(const std::string& text);

// True for addresses that only this host can reach.
bool IsLoopback(const std::string& host);

// True for the addresses that mean "every interface" (0.0.0.0, ::, "").
bool IsWildcard(const std::string& host);

// The host as it is written in a URL or a Host header: IPv6 addresses in brackets.
std::string UrlHost(const std::string& host);

// The same length and bytes, in time that does not depend on where they differ.
bool TokensEqual(std::string_view a, std::string_view b);

// True when the request carries `token` as `Authorization: Bearer <token>`, or, with
// `query_too`, as the query parameter ?token=<token> (what a browser's EventSource can send).
bool RequestHasToken(const httplib::Request& request, std::string_view token, bool query_too);

// A new random token: 16 bytes from the kernel's random source, as 32 hex digits.
StatusOr<std::string> RandomToken();

}  // namespace orion::http
