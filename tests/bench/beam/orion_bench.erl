%% BEAM workloads for scripts/bench.sh (tests/bench/beam/beam_bench.py drives them).
%%
%% The node runs serve/0, which reads one command per line on stdin and answers one line on
%% stdout, so the driver can attach and detach tracers between runs:
%%
%%   run W N     -> "ok Micros"                       W(N) untraced (or under whatever is attached)
%%   xprof W N   -> "ok Micros DrainMicros Calls"     W(N) under orion_bench_xprof tracing hot(W)
%%   eprof W N   -> "ok Micros"                       W(N) under eprof (every call of its processes)
%%   fprof W N   -> "ok Micros"                       W(N) under fprof's tracing (to a temp file)
%%   calls W N   -> "ok Calls"                        calls of hot(W) that W(N) makes
%%   par W N P   -> "ok Micros"                       P processes run W(N) at once: wall time of all
%%   info        -> "ok OsPid EmuFlavor DynamicTrace"
%%
%% Workloads, each with the hot function the "targeted" runs trace:
%%   fib N     call-heavy: body-recursive fib(N), every call is fib/1
%%   ring N    message-heavy: 64 processes in a ring, 4 tokens passed N hops in all; relay/2 per hop
%%   codec N   realistic: N requests, each a term encode/decode round trip and ETS insert/lookup; handle/2
-module(orion_bench).
-export([serve/0, run/2, par/3, hot/1, calls/2, fib/1, relay/2, handle/2]).

-define(RING_SIZE, 64).
-define(TOKENS, 4).

serve() ->
    case io:get_line('') of
        eof -> halt(0);
        {error, _} -> halt(1);
        Line ->
            Reply = try command(string:lexemes(string:trim(Line), " "))
                    catch Class:Reason -> io_lib:format("error ~p:~p", [Class, Reason])
                    end,
            io:put_chars([Reply, $\n]),
            serve()
    end.

command(["info"]) ->
    io_lib:format("ok ~s ~p ~p", [os:getpid(), erlang:system_info(emu_flavor),
                                  erlang:system_info(dynamic_trace)]);
command(["run", W, N]) ->
    io_lib:format("ok ~b", [run(list_to_atom(W), list_to_integer(N))]);
command(["par", W, N, P]) ->
    io_lib:format("ok ~b", [par(list_to_atom(W), list_to_integer(N), list_to_integer(P))]);
command(["calls", W, N]) ->
    io_lib:format("ok ~b", [calls(list_to_atom(W), list_to_integer(N))]);
command(["xprof", W, N]) ->
    Workload = list_to_atom(W),
    Tracer = orion_bench_xprof:start([hot(Workload)]),
    Micros = run(Workload, list_to_integer(N)),
    T0 = erlang:monotonic_time(microsecond),
    #{calls := Calls} = orion_bench_xprof:stop(Tracer),
    Drain = erlang:monotonic_time(microsecond) - T0,
    io_lib:format("ok ~b ~b ~b", [Micros, Drain, Calls]);
command(["eprof", W, N]) ->
    %% For the record (issue 7): the standard profilers on the same workload. eprof traces
    %% every call of the workload's processes (set_on_spawn) and counts time per function.
    {ok, _} = eprof:start(),
    {ok, Micros} = eprof:profile([], fun() -> run(list_to_atom(W), list_to_integer(N)) end),
    stopped = eprof:stop(),
    io_lib:format("ok ~b", [Micros]);
command(["fprof", W, N]) ->
    %% fprof's trace phase: every call, return and schedule event to a trace file.
    File = filename:join("/tmp", "orion_bench_fprof_" ++ os:getpid() ++ ".trace"),
    Micros = fprof:apply(fun() -> run(list_to_atom(W), list_to_integer(N)) end, [],
                         [{file, File}]),
    _ = file:delete(File),
    io_lib:format("ok ~b", [Micros]);
command(["quit"]) ->
    halt(0).

hot(fib) -> {?MODULE, fib, 1};
hot(ring) -> {?MODULE, relay, 2};
hot(codec) -> {?MODULE, handle, 2}.

calls(fib, N) -> 2 * fib(N + 1) - 1;
calls(ring, N) -> (N div ?TOKENS) * ?TOKENS;
calls(codec, N) -> N.

%% Wall time of one run of the workload in a fresh process, in microseconds (set-up excluded).
run(Workload, N) ->
    Parent = self(),
    {Pid, Ref} = spawn_monitor(fun() -> Parent ! {self(), timed(Workload, N)} end),
    receive
        {Pid, Micros} ->
            receive {'DOWN', Ref, process, Pid, _} -> Micros end;
        {'DOWN', Ref, process, Pid, Reason} ->
            error({workload_died, Reason})
    end.

%% P processes run the workload at once (the schedulers share them out); the wall time from the
%% first spawn to the last one's end, in microseconds.
par(Workload, N, P) ->
    Parent = self(),
    T0 = erlang:monotonic_time(microsecond),
    Pids = [spawn(fun() -> _ = timed(Workload, N), Parent ! {self(), done} end)
            || _ <- lists:seq(1, P)],
    [receive {Pid, done} -> ok end || Pid <- Pids],
    erlang:monotonic_time(microsecond) - T0.

timed(fib, N) ->
    T0 = erlang:monotonic_time(microsecond),
    _ = fib(N),
    erlang:monotonic_time(microsecond) - T0;
timed(ring, N) ->
    Ring = make_ring(?RING_SIZE),
    Hops = N div ?TOKENS,
    T0 = erlang:monotonic_time(microsecond),
    [hd(Ring) ! {token, Hops, self()} || _ <- lists:seq(1, ?TOKENS)],
    [receive done -> ok end || _ <- lists:seq(1, ?TOKENS)],
    T = erlang:monotonic_time(microsecond) - T0,
    [exit(P, kill) || P <- Ring],
    T;
timed(codec, N) ->
    Tab = ets:new(orion_bench_codec, [set, public]),
    T0 = erlang:monotonic_time(microsecond),
    _ = codec_loop(Tab, N, 0),
    T = erlang:monotonic_time(microsecond) - T0,
    ets:delete(Tab),
    T.

fib(N) when N < 2 -> N;
fib(N) -> fib(N - 1) + fib(N - 2).

make_ring(Size) ->
    First = spawn(fun() -> receive {next, Next} -> ring_node(Next) end end),
    Ring = lists:foldl(fun(_, [Next | _] = Acc) -> [spawn(fun() -> ring_node(Next) end) | Acc] end,
                       [First], lists:seq(2, Size)),
    First ! {next, hd(Ring)},
    Ring.

ring_node(Next) ->
    receive
        {token, 0, From} -> From ! done, ring_node(Next);
        {token, K, From} -> ok = relay(Next, {token, K - 1, From}), ring_node(Next)
    end.

relay(Next, Msg) ->
    Next ! Msg,
    ok.

codec_loop(_, 0, Acc) -> Acc;
codec_loop(Tab, K, Acc) -> codec_loop(Tab, K - 1, Acc + handle(Tab, K)).

%% One "request": build a record-like map, encode and decode it, store it, read another back.
handle(Tab, K) ->
    Request = #{id => K, user => <<"user-", (integer_to_binary(K rem 977))/binary>>,
                tags => [alpha, beta, {k, K rem 13}], score => K * 1.5},
    Decoded = binary_to_term(term_to_binary(Request)),
    true = ets:insert(Tab, {K rem 1024, Decoded}),
    case ets:lookup(Tab, (K * 7) rem 1024) of
        [{_, #{id := Id}}] -> Id rem 2;
        [] -> 0
    end.
