%% Workloads for tracer mode (tests/integration/tracer_bpf_test.cc, docs/tracer.md).
-module(orion_tracer_workload).
-export([get_user/2, call_get_user/3, timed_get_user/3,
         loop/1, raiser/1, call_raiser/1, spin/1]).

%% get_user(Who, Ms): sleeps Ms milliseconds (0: returns at once).
get_user(Who, 0) -> {user, Who};
get_user(Who, Ms) -> timer:sleep(Ms), {user, Who}.

%% N calls of get_user(Who, Ms), in the calling process.
call_get_user(_Who, _Ms, 0) -> ok;
call_get_user(Who, Ms, N) ->
    _ = get_user(Who, Ms),
    call_get_user(Who, Ms, N - 1).

%% The same, returning each call's wall time in nanoseconds, measured around the call (the
%% oracle for latency tests).
timed_get_user(Who, Ms, N) ->
    [begin
         T0 = erlang:monotonic_time(nanosecond),
         _ = get_user(Who, Ms),
         erlang:monotonic_time(nanosecond) - T0
     end || _ <- lists:seq(1, N)].

%% Self tail recursion: loop(K) is K + 1 calls under return_trace (docs/tracer.md).
loop(0) -> done;
loop(K) -> loop(K - 1).

raiser(X) -> erlang:error({boom, X}).

call_raiser(0) -> ok;
call_raiser(N) ->
    caught = try raiser(N) catch error:{boom, _} -> caught end,
    call_raiser(N - 1).

%% A process that runs forever, so the test can see that the node runs on.
spin(Parent) ->
    receive stop -> Parent ! stopped
    after 10 -> spin(Parent)
    end.
