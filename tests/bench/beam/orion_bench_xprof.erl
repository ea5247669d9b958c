%% The Erlang-tracing baseline: what xprof (and Orion-for-Elixir) do to time a function.
%%
%% start/1 sets a local call pattern with return_trace on each MFA and turns call tracing on for
%% every process; the tracer process pairs each call with its return_from per pid and counts the
%% latency in a log2 histogram. stop/1 turns tracing off, waits until every trace message has
%% been delivered and the tracer has handled it, and returns #{calls, histogram}.
-module(orion_bench_xprof).
-export([start/1, stop/1]).

start(MFAs) ->
    Tracer = spawn(fun() -> tracer_loop(#{}, #{}, 0) end),
    lists:foreach(
      fun({M, _, _} = MFA) ->
              {module, M} = code:ensure_loaded(M),
              1 = erlang:trace_pattern(MFA, [{'_', [], [{return_trace}]}], [local])
      end, MFAs),
    erlang:trace(all, true, [call, timestamp, {tracer, Tracer}]),
    Tracer.

stop(Tracer) ->
    erlang:trace(all, false, [call]),
    erlang:trace_pattern({'_', '_', '_'}, false, [local]),
    Ref = erlang:trace_delivered(all),
    receive {trace_delivered, all, Ref} -> ok end,
    Tracer ! {stop, self()},
    receive {Tracer, Result} -> Result end.

%% Stacks: pid -> [call timestamp in microseconds]; Hist: log2(microseconds) -> count.
tracer_loop(Stacks, Hist, Calls) ->
    receive
        {trace_ts, Pid, call, _MFArgs, TS} ->
            tracer_loop(Stacks#{Pid => [micros(TS) | maps:get(Pid, Stacks, [])]}, Hist, Calls);
        {trace_ts, Pid, return_from, _MFA, _Ret, TS} ->
            case maps:get(Pid, Stacks, []) of
                [Start | Rest] ->
                    Bucket = log2(micros(TS) - Start),
                    tracer_loop(Stacks#{Pid => Rest},
                                Hist#{Bucket => maps:get(Bucket, Hist, 0) + 1}, Calls + 1);
                [] ->
                    tracer_loop(Stacks, Hist, Calls)
            end;
        {stop, From} ->
            From ! {self(), #{calls => Calls, histogram => Hist}};
        _Other ->
            tracer_loop(Stacks, Hist, Calls)
    end.

micros({Mega, Sec, Micro}) -> (Mega * 1000000 + Sec) * 1000000 + Micro.

log2(Micros) when Micros < 1 -> 0;
log2(Micros) -> 1 + log2(Micros bsr 1).
