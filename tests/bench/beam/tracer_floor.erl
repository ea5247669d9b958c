%% What tracer mode's per-call cost is made of (docs/tracer.md "Cost"): ERTS's meta call tracing
%% with Orion's tracer NIF, on fib(25), every call of fib/1 traced.
%%
%%   untraced       nothing set
%%   ignored        a meta pattern whose tracer state is an id the NIF ignores (>= 128): ERTS's
%%                  part (breakpoint, match spec, return-trace frame, the NIF called for the call
%%                  and for the return) with nothing counted
%%   counted        a valid id: the same plus the NIF's clock reads, pairing and counting
%%
%% run(NifPathWithoutSo, Reps) prints the median per traced call of each state; driven by
%% tests/bench/beam/tracer_floor.sh.
-module(tracer_floor).
-export([run/2]).

run(Nif, Reps) ->
    ok = orion_tracer:load_nif(Nif),
    Calls = orion_bench:calls(fib, 25),
    Mfa = {orion_bench, fib, 1},
    Spec = [{'_', [], [{exception_trace}]}],
    Time = fun() -> orion_bench:run(fib, 25) end,
    _ = [Time() || _ <- lists:seq(1, 3)],
    Untraced = median([Time() || _ <- lists:seq(1, Reps)]),
    Under = fun(Id) ->
                    1 = erlang:trace_pattern(Mfa, Spec, [{meta, orion_tracer, Id}]),
                    T = median([Time() || _ <- lists:seq(1, Reps)]),
                    erlang:trace_pattern(Mfa, false, [meta]),
                    T
            end,
    Ignored = Under(999),
    Counted = Under(0),
    io:format("fib(25), ~b calls, median of ~b runs: untraced ~b us; per traced call: "
              "ignored ~.2f us, counted ~.2f us (counting ~.2f us)~n",
              [Calls, Reps, Untraced, (Ignored - Untraced) / Calls, (Counted - Untraced) / Calls,
               (Counted - Ignored) / Calls]).

median(L) -> lists:nth(length(L) div 2 + 1, lists:sort(L)).
