%% Workloads for `orion top`'s integration tests (tests/integration/top_bpf_test.cc), each with
%% a property known exactly on the Erlang side: a mailbox that is never read, a busy loop, a
%% TCP socket written a known number of bytes, a process that allocates under
%% erlang:trace(Pid, true, [garbage_collection]) as the oracle of its GC count.
-module(orion_top_workload).
-export([start_sink/1, flood/2, sink_queue_len/1, stop_registered/1,
         start_busy/1, pid_string/1,
         tcp_send/2,
         traced_gc/1, gc_worker_loop/1,
         bench/2]).

%% A process registered as Name that waits for a message that never comes: every message
%% sent to it stays in its queue.
start_sink(Name) ->
    Pid = spawn(fun() -> receive {'$orion_top_never', _} -> ok end end),
    true = register(Name, Pid),
    pid_string(Pid).

%% Sends N messages to the registered process Name; returns when all are in its queue.
flood(Name, N) ->
    Pid = whereis(Name),
    lists:foreach(fun(I) -> Pid ! {msg, I} end, lists:seq(1, N)),
    wait_queue(Pid, N).

wait_queue(Pid, N) ->
    case erlang:process_info(Pid, message_queue_len) of
        {message_queue_len, L} when L >= N -> L;
        _ -> timer:sleep(10), wait_queue(Pid, N)
    end.

sink_queue_len(Name) ->
    {message_queue_len, L} = erlang:process_info(whereis(Name), message_queue_len),
    L.

stop_registered(Name) ->
    case whereis(Name) of
        undefined -> ok;
        Pid -> unregister(Name), exit(Pid, kill), ok
    end.

%% A process registered as Name that loops without ever waiting.
start_busy(Name) ->
    Pid = spawn(fun busy_loop/0),
    true = register(Name, Pid),
    pid_string(Pid).

busy_loop() ->
    _ = erlang:phash2(erlang:unique_integer()),
    busy_loop().

pid_string(Pid) -> erlang:pid_to_list(Pid).

%% Opens a TCP connection over loopback, writes the binaries of Sizes (one gen_tcp:send each)
%% with the given {packet, P} framing, reads everything on the other side, and returns
%% {ClientPortString, BytesSent, Sends}.
tcp_send(Sizes, Packet) ->
    {ok, L} = gen_tcp:listen(0, [binary, {active, false}, {ip, {127, 0, 0, 1}}, {packet, Packet}]),
    {ok, Port} = inet:port(L),
    Self = self(),
    Reader = spawn_link(fun() ->
                                {ok, S} = gen_tcp:accept(L),
                                Self ! {received, read_all(S, 0)}
                        end),
    {ok, C} = gen_tcp:connect({127, 0, 0, 1}, Port, [binary, {active, false}, {packet, Packet}]),
    lists:foreach(fun(Size) -> ok = gen_tcp:send(C, binary:copy(<<"x">>, Size)) end, Sizes),
    ok = gen_tcp:close(C),
    Total = lists:sum(Sizes),
    receive {received, Got} -> ok after 10000 -> Got = timeout end,
    unlink(Reader),
    gen_tcp:close(L),
    Total = Got,
    {erlang:port_to_list(C), Total, length(Sizes)}.

read_all(S, N) ->
    case gen_tcp:recv(S, 0) of
        {ok, B} -> read_all(S, N + byte_size(B));
        {error, closed} -> N
    end.

%% Runs a process that allocates Rounds times a list of 10,000 elements and drops it, under
%% erlang:trace(Pid, true, [garbage_collection, monotonic_timestamp]). Returns
%% {PidString, Counts, PausesNs}: the number of gc_minor_start, gc_minor_end, gc_major_start and
%% gc_major_end trace messages, and the time from each start message to its end message (the
%% BEAM takes these timestamps just outside the gc probes, so they bracket the probes' pauses).
%% The worker stays alive (parked in a receive) so that its counts are read before it exits.
traced_gc(Rounds) ->
    Self = self(),
    Tracer = spawn(fun() -> tracer_loop(#{}, undefined, []) end),
    Worker = spawn(fun() -> receive go -> ok end, gc_worker_loop(Rounds), Self ! done,
                           receive stop -> ok end end),
    1 = erlang:trace(Worker, true, [garbage_collection, monotonic_timestamp, {tracer, Tracer}]),
    Worker ! go,
    receive done -> ok end,
    erlang:trace(Worker, false, [garbage_collection]),
    Ref = erlang:trace_delivered(Worker),
    receive {trace_delivered, Worker, Ref} -> ok end,
    Tracer ! {counts, Self},
    receive {counts, Counts, Pauses} -> {pid_string(Worker), Counts, Pauses} end.

gc_worker_loop(0) -> ok;
gc_worker_loop(N) ->
    L = lists:seq(1, 10000),
    _ = length(L),
    gc_worker_loop(N - 1).

tracer_loop(Counts, Start, Pauses) ->
    receive
        {trace_ts, _Pid, Event, _Info, Ts} when Event =:= gc_minor_start; Event =:= gc_major_start ->
            tracer_loop(maps:update_with(Event, fun(V) -> V + 1 end, 1, Counts), Ts, Pauses);
        {trace_ts, _Pid, Event, _Info, Ts} when Event =:= gc_minor_end; Event =:= gc_major_end ->
            Pause = erlang:convert_time_unit(Ts - Start, native, nanosecond),
            tracer_loop(maps:update_with(Event, fun(V) -> V + 1 end, 1, Counts), undefined,
                        [Pause | Pauses]);
        {counts, From} ->
            From ! {counts, [maps:get(E, Counts, 0)
                             || E <- [gc_minor_start, gc_minor_end, gc_major_start, gc_major_end]],
                    lists:reverse(Pauses)};
        _ ->
            tracer_loop(Counts, Start, Pauses)
    end.

%% Benchmarks for the probe groups' overhead (scripts/bench/top_overhead.py): the wall time in
%% microseconds of N rounds of a workload that fires one group's probes often.
%%   pingpong  two processes exchange N messages each way (sends, queueing, receives, and a
%%             process switch per message)
%%   spawn     N processes spawned and exited, one at a time
%%   alloc     N lists of 1,000 elements built and dropped (garbage collections)
%%   tcp       N gen_tcp:send of 64 bytes over loopback (port commands, driver output)
bench(pingpong, N) ->
    Pong = spawn(fun pong/0),
    {T, ok} = timer:tc(fun() -> ping(Pong, N) end),
    exit(Pong, kill),
    T;
bench(spawn, N) ->
    {T, ok} = timer:tc(fun() -> spawn_wait(N) end),
    T;
bench(alloc, N) ->
    Self = self(),
    Worker = spawn(fun() -> receive go -> ok end, alloc_loop(N), Self ! done end),
    {T, ok} = timer:tc(fun() -> Worker ! go, receive done -> ok end end),
    T;
bench(tcp, N) ->
    {ok, L} = gen_tcp:listen(0, [binary, {active, false}, {ip, {127, 0, 0, 1}}]),
    {ok, Port} = inet:port(L),
    Self = self(),
    spawn_link(fun() -> {ok, S} = gen_tcp:accept(L), Self ! {received, read_all(S, 0)} end),
    {ok, C} = gen_tcp:connect({127, 0, 0, 1}, Port, [binary, {active, false}]),
    Payload = binary:copy(<<"x">>, 64),
    {T, ok} = timer:tc(fun() -> tcp_loop(C, Payload, N) end),
    gen_tcp:close(C),
    receive {received, _} -> ok end,
    gen_tcp:close(L),
    T.

ping(_Pong, 0) -> ok;
ping(Pong, N) ->
    Pong ! {ping, self()},
    receive pong -> ping(Pong, N - 1) end.

pong() ->
    receive {ping, From} -> From ! pong, pong() end.

spawn_wait(0) -> ok;
spawn_wait(N) ->
    {Pid, Ref} = spawn_monitor(fun() -> ok end),
    receive {'DOWN', Ref, process, Pid, _} -> spawn_wait(N - 1) end.

alloc_loop(0) -> ok;
alloc_loop(N) ->
    L = lists:seq(1, 1000),
    _ = length(L),
    alloc_loop(N - 1).

tcp_loop(_C, _Payload, 0) -> ok;
tcp_loop(C, Payload, N) ->
    ok = gen_tcp:send(C, Payload),
    tcp_loop(C, Payload, N - 1).
