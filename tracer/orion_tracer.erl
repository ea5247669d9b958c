%% orion_tracer: Orion's tracer mode on the node side (docs/tracer.md).
%%
%% Loaded by `orion capture --mode tracer` with code:load_binary over its hidden-node
%% connection, used, and purged again. It is three things:
%%   * an erl_tracer module: enabled/3 and trace/5 are NIFs (orion_tracer_nif.c) that pair
%%     each traced call with its return and count its latency in the NIF's memory, where
%%     orion reads it;
%%   * a watchdog: the process that sets the meta trace patterns of one capture and clears
%%     them when the capture ends, when Orion's connection drops (kill -9 of orion), or when
%%     the capture's time limit is over, whichever comes first;
%%   * the parser of match specs from the command line: erl_scan + erl_parse:parse_term, so
%%     the text can only be a literal term; nothing the user writes is evaluated.
-module(orion_tracer).
-export([enabled/3, trace/5, area/0, load_nif/1,
         parse_match_spec/1, start/5, stop/2, session/0]).

-define(SESSION, orion_tracer_session).
-define(MAX_TARGETS, 128).

%% The erl_tracer callbacks, replaced by load_nif/1.
enabled(_TraceTag, _TracerState, _Tracee) -> erlang:nif_error(not_loaded).
trace(_TraceTag, _TracerState, _Tracee, _TraceTerm, _Opts) -> erlang:nif_error(not_loaded).
%% The address of the NIF's counts in this OS process (tracer/orion_tracer_area.h).
area() -> erlang:nif_error(not_loaded).

%% Loads the NIF library Path (without ".so").
load_nif(Path) when is_binary(Path) ->
    erlang:load_nif(binary_to_list(Path), 0).

%% The running session's watchdog, or undefined.
session() -> whereis(?SESSION).

%% A match spec written in Erlang term syntax: "[{['_', nadia], [], []}]".
%% -> {ok, MatchSpec} | {error, Reason :: binary()}
parse_match_spec(Text) when is_binary(Text) ->
    case unicode:characters_to_list(Text) of
        Chars when is_list(Chars) ->
            case erl_scan:string(with_dot(Chars)) of
                {ok, Tokens, _} ->
                    case erl_parse:parse_term(Tokens) of
                        {ok, Term} -> {ok, Term};
                        {error, {_, Mod, Desc}} -> error_text("~ts", [Mod:format_error(Desc)])
                    end;
                {error, {_, Mod, Desc}, _} -> error_text("~ts", [Mod:format_error(Desc)])
            end;
        _ -> error_text("not UTF-8 text", [])
    end.

with_dot(Chars) ->
    case lists:reverse(string:trim(Chars, trailing)) of
        [$. | _] -> Chars;
        _ -> Chars ++ " ."
    end.

%% Starts a capture: Targets are {M, F, Arity | '_'} (F may be '_' too); MatchSpec is the
%% text of a list of {Head, Guards, []} clauses, or '_' for every call. Validates everything
%% before it changes anything, then spawns the watchdog that sets the meta trace patterns.
%% Missing is `all` (a target whose module does not load, or that names no function of it,
%% is an error) or `skip_missing` (it is left out and said; an error only if none is left:
%% a capture across a host's nodes, where some of them never load the module).
%% -> {ok, Watchdog, [{Id, MfaText, Mfa}], [Missing :: binary()]}
%%    | {error, Reason :: binary()} | {error, {not_loaded, [Missing :: binary()]}}.
start(OrionNode, Targets, Text, MaxMs, Missing) when is_binary(Text) ->
    case parse_match_spec(Text) of
        {ok, MatchSpec} -> start(OrionNode, Targets, MatchSpec, MaxMs, Missing);
        {error, Reason} -> error_text("bad match spec: ~ts", [Reason])
    end;
start(OrionNode, Targets, MatchSpec, MaxMs, Missing)
  when is_atom(OrionNode), is_list(Targets), is_integer(MaxMs), MaxMs > 0,
       (Missing =:= all orelse Missing =:= skip_missing) ->
    case session() of
        undefined ->
            case expand_targets(Targets, Missing) of
                {ok, Mfas, Left} ->
                    case trace_spec(MatchSpec, Mfas) of
                        {ok, Spec} -> spawn_watchdog(OrionNode, Mfas, Spec, MaxMs, Left);
                        Error -> Error
                    end;
                Error -> Error
            end;
        Pid -> error_text("another Orion tracer capture is running on this node (~p)", [Pid])
    end.

%% Ends the capture of Watchdog, whose targets start/4 returned: the patterns are
%% cleared when it returns, also if the watchdog is gone (killed by someone).
stop(Watchdog, Targets) when is_pid(Watchdog), is_list(Targets) ->
    Ref = erlang:monitor(process, Watchdog),
    Watchdog ! {stop, self(), Ref},
    Stopped = receive
                  {Ref, stopped} -> erlang:demonitor(Ref, [flush]), ok;
                  {'DOWN', Ref, process, _, _} -> ok
              after 10000 -> error_text("the watchdog did not stop", [])
              end,
    clear_tracing([Mfa || {_, _, {_, _, _} = Mfa} <- Targets]),
    Stopped.

%% -> {ok, Mfas, Missing} | {error, _}: the functions the targets name, and why each target
%% left out was (skip_missing only).
expand_targets(Targets, Missing) ->
    expand_targets(Targets, Missing, [], []).

expand_targets([], _, [], [_ | _] = Left) ->
    {error, {not_loaded, lists:reverse(Left)}};
expand_targets([], _, Acc, Left) ->
    Mfas = lists:usort(Acc),
    case length(Mfas) of
        N when N > ?MAX_TARGETS -> error_text("~b functions match, at most ~b", [N, ?MAX_TARGETS]);
        _ -> {ok, Mfas, lists:reverse(Left)}
    end;
expand_targets([{M, F, _} = Target | Rest], Missing, Acc, Left) when is_atom(M), is_atom(F) ->
    case target_functions(Target) of
        {ok, Fs} -> expand_targets(Rest, Missing, Fs ++ Acc, Left);
        {error, Why} when Missing =:= skip_missing -> expand_targets(Rest, Missing, Acc, [Why | Left]);
        {error, Why} -> {error, Why}
    end;
expand_targets([Bad | _], _, _, _) ->
    error_text("bad target ~tw", [Bad]).

%% -> {ok, [Mfa]} | {error, Why :: binary()}.
target_functions({M, F, A}) ->
    case code:ensure_loaded(M) of
        {module, M} ->
            Fs = [{M, F1, A1} || {F1, A1} <- M:module_info(functions),
                                 F =:= '_' orelse F1 =:= F, A =:= '_' orelse A1 =:= A],
            case Fs of
                [] -> error_text("module ~tw has no function ~ts", [M, mfa_text(M, F, A)]);
                _ -> {ok, Fs}
            end;
        {error, Reason} -> error_text("cannot load module ~tw: ~tw", [M, Reason])
    end.

%% The match spec each target gets: the user's heads and guards, and exception_trace as the
%% only action, so that every matched call reports exactly one return_from or
%% exception_from. Bodies must be empty: actions could change the node's trace state
%% ({trace, ...}, {enable_trace, ...}) in ways the clean-up would not undo.
trace_spec('_', _Mfas) ->
    {ok, [{'_', [], [{exception_trace}]}]};
trace_spec(MatchSpec, Mfas) when is_list(MatchSpec), MatchSpec =/= [] ->
    case check_clauses(MatchSpec, Mfas) of
        ok ->
            Spec = [{H, G, [{exception_trace}]} || {H, G, _} <- MatchSpec],
            Arities = lists:usort([A || {_, _, A} <- Mfas]),
            test_spec(Spec, Arities);
        Error -> Error
    end;
trace_spec(_, _) ->
    error_text("a match spec is a non-empty list of {Head, Guards, Body} clauses", []).

check_clauses([], _) -> ok;
check_clauses([{Head, Guards, Body} | Rest], Mfas) when is_list(Guards) ->
    case {Body, head_arity(Head)} of
        {[], any} -> check_clauses(Rest, Mfas);
        {[], {ok, N}} ->
            case [mfa_text(M, F, A) || {M, F, A} <- Mfas, A =/= N] of
                [] -> check_clauses(Rest, Mfas);
                [Mfa | _] -> error_text("the head ~tw has ~b arguments but ~ts takes ~b",
                                        [Head, N, Mfa, arity_of(Mfa, Mfas)])
            end;
        {[], bad} -> error_text("bad match spec head ~tw (a list of arguments or '_')", [Head]);
        {_, _} -> error_text("match spec bodies must be [] in tracer mode (Orion adds "
                             "exception_trace itself), got ~tw", [Body])
    end;
check_clauses([Clause | _], _) ->
    error_text("bad match spec clause ~tw (expected {Head, Guards, []})", [Clause]).

arity_of(_, [{_, _, A} | _]) -> A.

head_arity('_') -> any;
head_arity(Head) when is_list(Head) ->
    try length(Head) of N -> {ok, N} catch error:badarg -> bad end;
head_arity(Head) when is_atom(Head) ->
    case atom_to_list(Head) of
        [$$ | Digits] when Digits =/= [] -> any;
        _ -> bad
    end;
head_arity(_) -> bad.

test_spec(Spec, [A | Rest]) ->
    case erlang:match_spec_test(lists:duplicate(A, undefined), Spec, trace) of
        {ok, _, _, _} -> test_spec(Spec, Rest);
        {error, Errors} ->
            error_text("bad match spec: ~ts",
                       [lists:join("; ", [E || {_, E} <- Errors])])
    end;
test_spec(Spec, []) ->
    {ok, Spec}.

spawn_watchdog(OrionNode, Mfas, Spec, MaxMs, Left) ->
    Caller = self(),
    Ref = make_ref(),
    Ids = lists:zip(lists:seq(0, length(Mfas) - 1), Mfas),
    {Pid, MRef} = spawn_monitor(fun() -> watchdog_init(Caller, Ref, OrionNode, Ids, Spec,
                                                       MaxMs) end),
    receive
        {Ref, ok} ->
            erlang:demonitor(MRef, [flush]),
            {ok, Pid, [{Id, unicode:characters_to_binary(mfa_text(M, F, A)), Mfa}
                       || {Id, {M, F, A} = Mfa} <- Ids], Left};
        {Ref, {error, _} = Error} ->
            erlang:demonitor(MRef, [flush]),
            Error;
        {'DOWN', MRef, process, Pid, Reason} ->
            error_text("the watchdog died: ~tp", [Reason])
    end.

watchdog_init(Caller, Ref, OrionNode, Ids, Spec, MaxMs) ->
    Mfas = [Mfa || {_, Mfa} <- Ids],
    try register(?SESSION, self()) of
        true ->
            erlang:monitor_node(OrionNode, true),
            case lists:member(OrionNode, nodes(hidden)) of
                true ->
                    Set = set_tracing(Ids, Spec),
                    Caller ! {Ref, Set},
                    case Set of
                        ok -> watchdog_loop(OrionNode, Mfas, MaxMs);
                        _ -> ok
                    end;
                false ->
                    Caller ! {Ref, error_text("~tw is not connected", [OrionNode])}
            end
    catch error:badarg ->
            Caller ! {Ref, error_text("another Orion tracer capture is running on this node", [])}
    end.

watchdog_loop(OrionNode, Mfas, MaxMs) ->
    receive
        {stop, From, Ref} ->
            clear_tracing(Mfas),
            From ! {Ref, stopped};
        {nodedown, OrionNode} ->
            clear_tracing(Mfas),
            unload_later()
    after MaxMs ->
            clear_tracing(Mfas),
            unload_later()
    end.

%% Orion is gone (or late): remove this module too. The watchdog runs its code until it exits,
%% so the purge happens a moment later, in a process of the timer server that runs none.
unload_later() ->
    _ = code:delete(?MODULE),
    _ = timer:apply_after(500, code, soft_purge, [?MODULE]),
    ok.

%% -> ok | {error, Reason}. Meta trace patterns, one per target with its id as the tracer's
%% state: ERTS calls orion_tracer for every call of the target that the match spec selects, in
%% whichever process makes it, and no process gets a trace flag. So the processes' own tracing
%% (dbg, recon, another tool's tracer) is neither taken over nor in the way, untargeted code is
%% not slowed down (a process with call trace flags makes ERTS ask its tracer module
%% enabled(trace_status, ...) at every schedule-in: a quarter more time for a message-heavy
%% workload, docs/tracer.md), and there is nothing to set on or clear from every process.
set_tracing(Ids, Spec) ->
    case [Mfa || {_, Mfa} <- Ids, meta_traced(Mfa)] of
        [] ->
            try
                [1 = erlang:trace_pattern(Mfa, Spec, [{meta, ?MODULE, Id}]) || {Id, Mfa} <- Ids],
                ok
            catch Class:Reason ->
                    clear_tracing([Mfa || {_, Mfa} <- Ids]),
                    error_text("setting the trace failed: ~tp:~tp", [Class, Reason])
            end;
        [{M, F, A} | _] ->
            error_text("~ts is already meta-traced (by another tool?): Orion leaves it alone",
                       [mfa_text(M, F, A)])
    end.

meta_traced(Mfa) ->
    meta_tracer(Mfa) =/= false.

%% The meta tracer of Mfa, or false. (From trace_info(Mfa, all): trace_info(Mfa, meta) answers
%% {meta, []} for a function with only a local pattern, on OTP 25.)
meta_tracer(Mfa) ->
    case erlang:trace_info(Mfa, all) of
        {all, Items} when is_list(Items) -> proplists:get_value(meta, Items, false);
        _ -> false
    end.

%% Removes our meta patterns (a target that another tool meta-traces now keeps its pattern).
clear_tracing(Mfas) ->
    [erlang:trace_pattern(Mfa, false, [meta]) || Mfa <- Mfas, ours(Mfa)],
    ok.

ours(Mfa) ->
    case meta_tracer(Mfa) of
        {?MODULE, _} -> true;
        _ -> false
    end.

mfa_text(M, F, A) when is_integer(A) -> io_lib:format("~tw:~tw/~b", [M, F, A]);
mfa_text(M, F, '_') -> io_lib:format("~tw:~tw/_", [M, F]).

error_text(Format, Args) ->
    {error, unicode:characters_to_binary(io_lib:format(Format, Args))}.
