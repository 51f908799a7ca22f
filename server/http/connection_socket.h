// The socket of the HTTP connection a request came on, so that a handler waiting for the engine
// notices when its client hangs up. cpp-httplib 0.11 (Debian 12's) does not hand a handler its
// socket; a connection is identified by its two endpoints, which the request carries.
#pragma once

#include <string>

namespace tlcm::server {

// The descriptor of this process's TCP socket whose local port is `local_port` and whose peer
// is `remote_addr`:`remote_port` (numeric host, as the request states it), or -1. Reads
// /proc/self/fd: cost grows with the open descriptors (about a microsecond each), so call it
// once per request.
int FindConnectionSocket(const std::string& remote_addr, int remote_port, int local_port);

// Whether the peer of socket `fd` has closed or reset the connection (never blocks, consumes
// nothing). False for fd -1.
bool PeerHungUp(int fd);

}  // namespace tlcm::server
