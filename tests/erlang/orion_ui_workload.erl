%% The UI benchmark's workload (scripts/bench/ui_goal.sh): ten functions with latencies from a
%% microsecond to milliseconds, called in a loop at a steady rate until a deadline, so that a
%% capture of orion_ui_workload has ten functions on every node, every second.
-module(orion_ui_workload).
-export([start/2, f0/1, f1/1, f2/1, f3/1, f4/1, f5/1, f6/1, f7/1, f8/1, f9/1]).

%% Calls the ten functions, Rate calls a second in all, for Seconds, in a process of its own;
%% returns at once.
start(Rate, Seconds) ->
    Deadline = erlang:monotonic_time(millisecond) + Seconds * 1000,
    _ = spawn(fun() -> loop(Rate, Deadline, 0) end),
    ok.

loop(Rate, Deadline, N) ->
    Now = erlang:monotonic_time(millisecond),
    case Now >= Deadline of
        true -> done;
        false ->
            %% A batch of Rate/10 calls every 100 ms.
            [call(K rem 10, K) || K <- lists:seq(N, N + Rate div 10 - 1)],
            Spent = erlang:monotonic_time(millisecond) - Now,
            timer:sleep(max(0, 100 - Spent)),
            loop(Rate, Deadline, N + Rate div 10)
    end.

call(0, K) -> f0(K);
call(1, K) -> f1(K);
call(2, K) -> f2(K);
call(3, K) -> f3(K);
call(4, K) -> f4(K);
call(5, K) -> f5(K);
call(6, K) -> f6(K);
call(7, K) -> f7(K);
call(8, K) -> f8(K);
call(9, K) -> f9(K).

%% From cheap to expensive: arithmetic, small lists, hashing, sorting, sleeping now and then.
f0(K) -> K + 1.
f1(K) -> erlang:phash2(K).
f2(K) -> length(lists:seq(1, 10 + K rem 20)).
f3(K) -> erlang:phash2(lists:seq(1, 100 + K rem 100)).
f4(K) -> lists:sort([(K * I) rem 97 || I <- lists:seq(1, 200)]).
f5(K) -> erlang:md5(binary:copy(<<K:32>>, 256 + K rem 256)).
f6(K) -> lists:sum([erlang:phash2({K, I}) rem 7 || I <- lists:seq(1, 500)]).
f7(K) -> case (K div 10) rem 50 of 0 -> timer:sleep(1); _ -> erlang:phash2(K) end.
f8(K) -> lists:reverse(lists:seq(1, 1000 + K rem 1000)).
f9(K) -> case (K div 10) rem 20 of 0 -> timer:sleep(2); _ -> erlang:md5(<<K:64>>) end.
