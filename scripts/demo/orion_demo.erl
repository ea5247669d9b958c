%% The demo BEAM's workload (scripts/demo.sh): a toy request handler whose functions have
%% known latencies, so that what `orion capture` shows can be checked by eye.
%%
%%   handle/1      the request: lookup + render + query          ~ 3 ms, 1 % ~ 40 ms
%%   lookup/1      an ETS read                                   ~ 1 µs
%%   render/1      CPU-bound BIFs (md5 of 200 KB)                ~ 1 ms, on-CPU
%%   db_query/1    waits (timer:sleep) 2 ms, 1 % of calls 40 ms  off-CPU: wall >> on-CPU
%%   checksum/1    body-recursive, returns through deallocate_return
-module(orion_demo).
-export([start/0, start/1, handle/1, lookup/1, render/1, db_query/1, checksum/1]).

start() -> start(4).

%% Starts `Workers` request loops and writes the OS pid where demo.sh reads it.
start(Workers) ->
    Parent = self(),
    spawn(fun() -> owner(Parent, Workers) end),
    receive started -> ok end,
    io:format("orion_demo: ~p workers in ~s (os pid ~s)~n", [Workers, node(), os:getpid()]).

%% Owns the cache table and keeps it alive.
owner(Parent, Workers) ->
    ets:new(orion_demo_cache, [named_table, public, set, {read_concurrency, true}]),
    [ets:insert(orion_demo_cache, {K, K * K}) || K <- lists:seq(1, 1000)],
    [spawn(fun() -> worker(W) end) || W <- lists:seq(1, Workers)],
    Parent ! started,
    receive stop -> ok end.

worker(N) ->
    _ = handle(N),
    worker(N + 1).

handle(Request) ->
    Value = lookup(Request rem 1000 + 1),
    Page = render(Value),
    Rows = db_query(Request),
    checksum(Page) + length(Rows).

lookup(Key) ->
    [{Key, Value}] = ets:lookup(orion_demo_cache, Key),
    Value.

render(Value) ->
    <<Digest:32, _/binary>> = erlang:md5(binary:copy(<<Value:64>>, 25000)),
    Digest.

db_query(Request) ->
    case rand:uniform(100) of
        1 -> timer:sleep(40);
        _ -> timer:sleep(2)
    end,
    [Request].

checksum(N) when N < 10 -> N;
checksum(N) -> N rem 10 + checksum(N div 10).
