%% Workloads with exactly known calls, for the integration tests and the demo.
%%
%% Every function documents which probes its calls fire in the patched emu flavor
%% (docs/probes.md): "entry" is a function-entry probe, "return" function__return.
-module(orion_workload).
-export([call_known/1, known/1, other/1,
         fact/1, call_fact/2,
         tail_caller/1, tail_callee/1, call_tail/2,
         self_tail/1, call_self_tail/2,
         raiser/1, catcher/1, call_catcher/2,
         sleeper/1, call_sleeper/2,
         busy/1, call_busy/2,
         each_known/1, call_each_known/2,
         parallel/3, known_then_spin/2,
         doomed/1, call_doomed/1,
         sleepy/1, woke/1, call_sleepy/1,
         stack_probe/0, raise_probe/0, call_stack_probes/0,
         load_elixir_style_module/0]).

%% N non-tail local calls of known/1: N entries and N returns of orion_workload:known/1.
call_known(0) -> ok;
call_known(N) ->
    _ = known(N),
    call_known(N - 1).

known(X) -> X + 1.

%% A function that is never called by the workloads above (patterns must not count it).
other(X) -> X * 2.

%% Body recursion: fact(K) makes K+1 nested calls; the multiplications return through
%% deallocate_return, the base case through return.
fact(0) -> 1;
fact(N) -> N * fact(N - 1).

call_fact(0, _K) -> ok;
call_fact(N, K) ->
    _ = fact(K),
    call_fact(N - 1, K).

%% tail_caller/1 tail-calls tail_callee/1: both enter at one depth, one return ends both.
tail_caller(X) -> tail_callee(X + 1).
tail_callee(X) -> X * 3.

call_tail(0, _X) -> ok;
call_tail(N, X) ->
    _ = tail_caller(X),
    call_tail(N - 1, X).

%% Self tail recursion: self_tail(K) enters K+1 times at one depth and returns once.
self_tail(0) -> done;
self_tail(K) -> self_tail(K - 1).

call_self_tail(0, _K) -> ok;
call_self_tail(N, K) ->
    _ = self_tail(K),
    call_self_tail(N - 1, K).

%% raiser/1 raises; catcher/1 catches it and then calls known/1 (at the depth raiser/1
%% was entered at or shallower, when the compiler trims the frame; without the
%% exception__catch probe the dead frame of raiser/1 would still look in flight).
raiser(X) -> erlang:error({boom, X}).

catcher(X) ->
    R = try raiser(X) catch error:{boom, _} -> caught end,
    _ = known(X),
    R.

call_catcher(0, _X) -> ok;
call_catcher(N, X) ->
    _ = catcher(X),
    call_catcher(N - 1, X).

%% Wall time >> on-CPU time.
sleeper(Ms) -> timer:sleep(Ms).

%% Calls sleeper(Ms) N times; returns the wall time of each call in nanoseconds, measured
%% around the call with erlang:monotonic_time (the oracle for latency tests).
call_sleeper(N, Ms) ->
    [begin
         T0 = erlang:monotonic_time(nanosecond),
         _ = sleeper(Ms),
         erlang:monotonic_time(nanosecond) - T0
     end || _ <- lists:seq(1, N)].

%% On-CPU time ~ wall time: a busy loop of K iterations.
busy(0) -> ok;
busy(K) -> busy(K - 1).

call_busy(N, K) ->
    [begin
         T0 = erlang:monotonic_time(nanosecond),
         _ = busy_wrapper(K),
         erlang:monotonic_time(nanosecond) - T0
     end || _ <- lists:seq(1, N)].

busy_wrapper(K) -> busy(K), ok.

%% each_known/1 tail-calls lists:foreach/2, another module, which calls back into this one:
%% the return that ends each_known/1 is foreach's, at each_known's depth. With the enable
%% table of patch 0003 on, lists' calls do not fire and its returns fire only when they can
%% end a targeted call (erl_orion_enable.h): this one must.
each_known(N) -> lists:foreach(fun(I) -> known(I) end, lists:seq(1, N)).

call_each_known(0, _N) -> ok;
call_each_known(M, N) ->
    _ = each_known(N),
    call_each_known(M - 1, N).

%% Runs Fun(N) in P processes at once and waits for all: P*N calls in total.
%% N processes, each makes one call of doomed/1 that ends its process (an uncaught exit): one
%% entry, no return, no catch, then process__exit. Returns when every process is gone.
doomed(X) -> exit({doomed, X}).

call_doomed(N) ->
    Refs = [element(2, spawn_monitor(fun() -> doomed(I) end)) || I <- lists:seq(1, N)],
    [receive {'DOWN', Ref, process, _, {doomed, _}} -> ok end || Ref <- Refs],
    ok.

%% N processes, each makes one call of sleepy/1, which hibernates (erlang:hibernate/3 discards
%% the stack: one entry, no return, then process__hibernate) once it told the parent so; woken
%% by a message, each starts afresh in woke/1 (one entry, one return) and exits normally.
%% Returns when every process is gone.
sleepy(Parent) ->
    Parent ! {asleep, self()},
    erlang:hibernate(?MODULE, woke, [Parent]).

woke(Parent) ->
    receive wake -> Parent ! {woke, self()} end.

call_sleepy(N) ->
    Self = self(),
    Procs = [spawn_monitor(fun() -> _ = sleepy(Self), unreachable end) || _ <- lists:seq(1, N)],
    [receive {asleep, Pid} -> ok end || {Pid, _} <- Procs],
    [Pid ! wake || {Pid, _} <- Procs],
    [receive {'DOWN', Ref, process, _, normal} -> ok end || {_, Ref} <- Procs],
    ok.

%% The stack as the program sees it, from inside stack_probe/0 and from an exception raised in
%% raise_probe/0, each as [{M, F, Arity}]. A capture that pairs them in the BEAM (a
%% breakpoint, and a return trap above the caller's return address: patch 0008) must change
%% neither. One entry and one return of stack_probe/0; one entry of raise_probe/0, ended by
%% the exception caught in raise_probe_stack/0.
stack_probe() ->
    {current_stacktrace, S} = process_info(self(), current_stacktrace),
    [{M, F, A} || {M, F, A, _} <- S].

raise_probe() ->
    erlang:error(probe).

raise_probe_stack() ->
    try raise_probe() of
        _ -> []
    catch
        error:probe:St -> [{M, F, A} || {M, F, A, _} <- St]
    end.

call_stack_probes() ->
    S = stack_probe(),
    R = raise_probe_stack(),
    {S, R}.

parallel(P, N, Fun) ->
    Parent = self(),
    Pids = [spawn_link(fun() -> Fun(N), Parent ! {done, self()} end) || _ <- lists:seq(1, P)],
    [receive {done, Pid} -> ok end || Pid <- Pids],
    ok.

%% Keeps every scheduler busy for Ms ms, one process per scheduler, the first of which
%% first makes N calls of known/1: no scheduler runs out of work (and so none waits, the
%% moment patch 0010 also fires its batch) until the spinners end. Returns at once.
known_then_spin(N, Ms) ->
    Deadline = erlang:monotonic_time(millisecond) + Ms,
    Schedulers = erlang:system_info(schedulers_online),
    [spawn(fun() ->
               case I of
                   1 -> call_known(N);
                   _ -> ok
               end,
               spin_until(Deadline)
           end) || I <- lists:seq(1, Schedulers)],
    ok.

spin_until(Deadline) ->
    case erlang:monotonic_time(millisecond) < Deadline of
        true -> spin_until(Deadline);
        false -> ok
    end.

%% Loads a module named 'Elixir.Orion.Demo' (what Elixir's Orion.Demo compiles to) with
%% double/1, compiled from abstract forms: Elixir-style patterns are tested without Elixir.
load_elixir_style_module() ->
    Forms = [{attribute, 1, module, 'Elixir.Orion.Demo'},
             {attribute, 2, export, [{double, 1}]},
             {function, 3, double, 1,
              [{clause, 3, [{var, 3, 'X'}], [], [{op, 3, '*', {var, 3, 'X'}, {integer, 3, 2}}]}]}],
    {ok, Module, Binary} = compile:forms(Forms),
    {module, Module} = code:load_binary(Module, "Elixir.Orion.Demo.beam", Binary),
    ok.
