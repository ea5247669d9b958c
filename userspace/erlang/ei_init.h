// erl_interface's process-wide set-up, once for every ei_cnode of the process.
//
// ei_init() resets the counters ei_make_ref() and ei_make_pid() draw from. The daemon has a
// CNode (its own node) and opens NodeClients (a stream's caller, peers, tracer mode): had each
// called ei_init() under a once-flag of its own, the first NodeClient would start the CNode's
// references over, and two streams of one caller got the same id (both streams' intervals then
// reached one capture of `orion ui`). Every ei_cnode of Orion goes through InitErlInterface().
#pragma once

namespace orion::erlang {

// Calls ei_init() the first time, never again; thread-safe.
void InitErlInterface();

}  // namespace orion::erlang
