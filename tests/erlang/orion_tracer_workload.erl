%% Workloads for tracer mode (tests/integration/tracer_bpf_test.cc, docs/tracer.md).
-module(orion_tracer_workload).
-export([get_user/2, call_get_user/3, timed_get_user/3,
         loop/1, raiser/1, call_raiser/1, spin/1, hold/1, hold_and_kill/1, loops/3]).

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

%% hold(Parent): tells Parent it is in the call, then waits forever (until killed).
hold(Parent) ->
    Parent ! {held, self()},
    receive release -> ok end.

%% N processes, each killed while inside hold/1: calls that never return, whose processes are
%% dead. Returns once every one is gone.
hold_and_kill(N) ->
    Self = self(),
    Pids = [spawn(fun() -> hold(Self) end) || _ <- lists:seq(1, N)],
    [receive {held, P} -> ok end || P <- Pids],
    Refs = [begin R = erlang:monitor(process, P), exit(P, kill), R end || P <- Pids],
    [receive {'DOWN', R, process, _, _} -> ok end || R <- Refs],
    ok.

%% P processes at once, each making Reps calls of loop(K) with a yield between them (so that
%% processes move between schedulers with calls in flight and between calls).
loops(P, Reps, K) ->
    Self = self(),
    Pids = [spawn(fun() ->
                          [begin erlang:yield(), loop(K) end || _ <- lists:seq(1, Reps)],
                          Self ! {done, self()}
                  end) || _ <- lists:seq(1, P)],
    [receive {done, Pid} -> ok end || Pid <- Pids],
    ok.
