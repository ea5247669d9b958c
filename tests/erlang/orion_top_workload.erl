%% Workloads for `orion top`'s integration tests (tests/integration/top_bpf_test.cc), each with
%% a property known exactly on the Erlang side: mailboxes that are never read, read in a
%% selective receive, read slowly or fast, a busy loop, a TCP socket written a known number of
%% bytes, a process that allocates under erlang:trace(Pid, true, [garbage_collection]) as the
%% oracle of its GC count.
%%
%% The mailbox workloads never ask the processes they fill anything while they run (no
%% process_info, no sys:get_state): that would make them handle their signals, which changes
%% what is measured. The tests read the oracle, sink_queue_len/1, after the measurement.
-module(orion_top_workload).
-export([start_sink/1, start_sleeper/1, send_n/2, sink_queue_len/1, stop_registered/1,
         start_selective/1, casts_and_calls/3,
         start_reader/2, stop_reading/1,
         start_busy/1, pid_string/1,
         burn/2, reductions_of/1, start_ets/2, ets_memory_bytes/1,
         spawn_and_end/1, start_workers/3, message_workers/1, worker_pids/1, stop_workers/1,
         tcp_send/2,
         traced_gc/1, gc_worker_loop/1,
         bench/2]).

%% A process registered as Name that waits for a message that never comes: every message
%% sent to it stays in its queue.
start_sink(Name) ->
    Pid = spawn(fun() -> receive {'$orion_top_never', _} -> ok end end),
    true = register(Name, Pid),
    pid_string(Pid).

%% A process registered as Name in timer:sleep(infinity): it never looks at its queue.
start_sleeper(Name) ->
    Pid = spawn(fun() -> timer:sleep(infinity) end),
    true = register(Name, Pid),
    pid_string(Pid).

%% Sends N messages to the registered process Name and returns N. A send returns once the
%% message is in the receiver's queues; nothing asks the receiver anything.
send_n(Name, N) ->
    Pid = whereis(Name),
    lists:foreach(fun(I) -> Pid ! {msg, I} end, lists:seq(1, N)),
    N.

%% The oracle: the receiver's queue length as the BEAM counts it (read after the measurement).
sink_queue_len(Name) ->
    {message_queue_len, L} = erlang:process_info(whereis(Name), message_queue_len),
    L.

stop_registered(Name) ->
    case whereis(Name) of
        undefined -> ok;
        Pid -> unregister(Name), exit(Pid, kill), ok
    end.

%% A process registered as Name that serves {call, From, Ref} (it replies {Ref, ok}) and leaves
%% every other message in its queue: a selective receive whose unmatched messages pile up, as
%% in a server that waits for one kind of message while casts it never matches arrive.
start_selective(Name) ->
    Pid = spawn(fun selective_loop/0),
    true = register(Name, Pid),
    pid_string(Pid).

selective_loop() ->
    receive {call, From, Ref} -> From ! {Ref, ok} end,
    selective_loop().

%% Sends Casts messages that Name never matches, with a call after every Every casts (waiting
%% for its reply); returns the number of calls.
casts_and_calls(Name, Casts, Every) ->
    Pid = whereis(Name),
    lists:foldl(fun(I, Calls) ->
                        Pid ! {cast, I},
                        case I rem Every of
                            0 ->
                                Ref = make_ref(),
                                Pid ! {call, self(), Ref},
                                receive {Ref, ok} -> Calls + 1 end;
                            _ ->
                                Calls
                        end
                end, 0, lists:seq(1, Casts)).

%% A process registered as Name that takes any message, then sleeps Ms milliseconds (0: no
%% sleep, a fast reader), until stop_reading(Name): then it takes no more (it waits for a
%% message that never comes), so that its backlog stays what it was for the oracle. The flag
%% is an atomics array, read by the reader itself: stopping it sends it nothing.
start_reader(Name, Ms) ->
    %% timer is loaded here: loaded by the reader's first timer:sleep/1, it would cost the reader
    %% one more message (the code server's reply), and the test counts exactly what it sends.
    {module, timer} = code:ensure_loaded(timer),
    Flag = atomics:new(1, []),
    persistent_term:put({?MODULE, Name}, Flag),
    Pid = spawn(fun() -> reader_loop(Flag, Ms) end),
    true = register(Name, Pid),
    pid_string(Pid).

reader_loop(Flag, Ms) ->
    case atomics:get(Flag, 1) of
        0 ->
            receive _ -> ok end,
            Ms > 0 andalso timer:sleep(Ms),
            reader_loop(Flag, Ms);
        _ ->
            receive '$orion_top_never' -> ok end
    end.

stop_reading(Name) ->
    atomics:put(persistent_term:get({?MODULE, Name}), 1, 1),
    ok.

%% A process registered as Name that loops without ever waiting.
start_busy(Name) ->
    Pid = spawn(fun busy_loop/0),
    true = register(Name, Pid),
    pid_string(Pid).

busy_loop() ->
    _ = erlang:phash2(erlang:unique_integer()),
    busy_loop().

%% Spawns a process registered as Name that runs Rounds rounds of a loop that burns reductions,
%% then waits in burn_wait/0; returns its pid string once it has finished the rounds. Its
%% reductions from then on are only those of its wait: reductions_of/1 read afterwards is the
%% oracle of all it used.
burn(Name, Rounds) ->
    Self = self(),
    Pid = spawn(fun() -> burn_loop(Rounds), Self ! {burned, self()}, burn_wait() end),
    true = register(Name, Pid),
    receive {burned, Pid} -> pid_string(Pid) end.

burn_loop(0) -> ok;
burn_loop(N) ->
    _ = erlang:phash2({N, N}),
    burn_loop(N - 1).

burn_wait() ->
    receive stop -> ok end.

%% Spawns N processes one after the other, each of which ends at once, and returns once they
%% have: the node's next pids are N further on (past a 15-bit number for N > 32767: OTP 25
%% counts on in the serial, OTP 26 on in a 28-bit number).
spawn_and_end(N) ->
    lists:foreach(fun(_) ->
                          {P, R} = spawn_monitor(fun() -> ok end),
                          receive {'DOWN', R, process, P, _} -> ok end
                  end, lists:seq(1, N)),
    ok.

%% Spawns N workers, each of which burns Rounds rounds (burn_loop/1) and then waits for stop;
%% returns once all have burned. Their pids are kept under Name (persistent_term): the test
%% reads them with worker_pids/1 after the measurement.
start_workers(Name, N, Rounds) ->
    Self = self(),
    Pids = [spawn(fun() -> burn_loop(Rounds), Self ! {burned, self()}, burn_wait() end)
            || _ <- lists:seq(1, N)],
    [receive {burned, P} -> ok end || P <- Pids],
    persistent_term:put({?MODULE, Name}, Pids),
    ok.

%% One message to each worker, which it never takes (it waits for stop only).
message_workers(Name) ->
    [P ! {orion_top_hello, I} || {I, P} <- lists:enumerate(persistent_term:get({?MODULE, Name}))],
    ok.

worker_pids(Name) ->
    [pid_string(P) || P <- persistent_term:get({?MODULE, Name})].

stop_workers(Name) ->
    [P ! stop || P <- persistent_term:get({?MODULE, Name}, [])],
    _ = persistent_term:erase({?MODULE, Name}),
    ok.

reductions_of(Name) ->
    {reductions, R} = erlang:process_info(whereis(Name), reductions),
    R.

%% A named public ETS table Name with N objects of about 100 bytes, owned by a process
%% registered as Name that waits forever.
start_ets(Name, N) ->
    Self = self(),
    Pid = spawn(fun() ->
                        ets:new(Name, [named_table, public, set]),
                        ets:insert(Name, [{I, binary:copy(<<"x">>, 100)} || I <- lists:seq(1, N)]),
                        Self ! {ets_ready, self()},
                        receive stop -> ok end
                end),
    true = register(Name, Pid),
    receive {ets_ready, Pid} -> pid_string(Pid) end.

ets_memory_bytes(Name) ->
    ets:info(Name, memory) * erlang:system_info(wordsize).

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
%%   flood     N messages sent to a process that never reads them (sends and queueing only:
%%             what a mailbox nobody reads costs)
%%   spawn     N processes spawned and exited, one at a time
%%   alloc     N lists of 1,000 elements built and dropped (garbage collections)
%%   tcp       N gen_tcp:send of 64 bytes over loopback (port commands, driver output)
bench(pingpong, N) ->
    Pong = spawn(fun pong/0),
    {T, ok} = timer:tc(fun() -> ping(Pong, N) end),
    exit(Pong, kill),
    T;
bench(flood, N) ->
    Sink = spawn(fun() -> timer:sleep(infinity) end),
    {T, ok} = timer:tc(fun() -> lists:foreach(fun(I) -> Sink ! I end, lists:seq(1, N)) end),
    exit(Sink, kill),
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
